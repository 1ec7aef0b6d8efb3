/** Registration keys, servers and clouds of a vault (R2, R3, R5, R7). */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseDuration } from '../../common/config/units.ts';
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { JobView, KeyView } from '../../common/api-client/types.ts';
import { keyIdSchema } from '../../common/wire/registration-key.ts';
import { keyState, type KeyRecord } from '../domain/registration-key.ts';
import type { JobRunner } from '../jobs/job-runner.ts';
import { CLOUD_SYNC_JOB_TYPE } from '../inventory/cloud-sync-job.ts';
import type { InventoryService } from '../inventory/inventory-service.ts';
import type { KeyService } from '../registration/key-service.ts';
import type { VaultService } from '../vaults/vault-service.ts';
import type { Clock } from '../../common/time/clock.ts';
import { route } from './route.ts';
import { jobView } from './views.ts';

const vaultParams = z.object({ vault: z.string() }).strict();

function keyView(k: KeyRecord, now: number): KeyView {
  return {
    id: k.id,
    vault: k.vault,
    issuedAt: k.issuedAt,
    expiresAt: k.expiresAt,
    singleUse: k.singleUse,
    server: k.server,
    revokedAt: k.revokedAt,
    uses: k.usedBy.length,
    state: keyState(k, now),
  };
}

export function inventoryRoutes(
  app: FastifyInstance,
  deps: {
    vaults: VaultService;
    keys: KeyService;
    inventory: InventoryService;
    jobs: JobRunner;
    clock: Clock;
  },
): void {
  const { vaults, keys, inventory } = deps;
  route(app, {
    method: 'POST',
    url: '/api/v1/vaults/:vault/keys',
    params: vaultParams,
    body: z
      .object({
        validFor: z.string().optional(),
        singleUse: z.boolean().optional(),
        server: z.string().optional(),
      })
      .strict(),
    status: 201,
    handler: async ({ params, body }) => {
      const validForMs =
        body.validFor === undefined ? undefined : parseDuration('validFor', body.validFor);
      const vault = await vaults.byName(params.vault);
      return keys.issue({
        vault,
        ...(validForMs === undefined ? {} : { validForMs }),
        singleUse: body.singleUse ?? false,
        server: body.server ?? null,
      });
    },
  });
  route(app, {
    method: 'GET',
    url: '/api/v1/vaults/:vault/keys',
    params: vaultParams,
    handler: async ({ params }): Promise<{ keys: KeyView[] }> => {
      const vault = await vaults.byName(params.vault);
      const now = deps.clock.now();
      return { keys: (await keys.list(vault.id)).map((k) => keyView(k, now)) };
    },
  });
  route(app, {
    method: 'POST',
    url: '/api/v1/vaults/:vault/keys/:keyId/revoke',
    params: z.object({ vault: z.string(), keyId: keyIdSchema }).strict(),
    handler: async ({ params }): Promise<KeyView> => {
      const vault = await vaults.byName(params.vault);
      return keyView(await keys.revoke(vault.id, params.keyId), deps.clock.now());
    },
  });
  route(app, {
    method: 'GET',
    url: '/api/v1/vaults/:vault/servers',
    params: vaultParams,
    handler: async ({ params }) => ({
      servers: await inventory.listServers((await vaults.byName(params.vault)).id),
    }),
  });
  route(app, {
    method: 'GET',
    url: '/api/v1/vaults/:vault/clouds',
    params: vaultParams,
    handler: async ({ params }) => ({
      clouds: await inventory.listClouds((await vaults.byName(params.vault)).id),
    }),
  });
  route(app, {
    method: 'POST',
    url: '/api/v1/vaults/:vault/clouds/sync',
    params: vaultParams,
    body: z.object({ server: z.string().min(1), cloud: z.string().min(1) }).strict(),
    status: 201,
    handler: async ({ params, body }): Promise<JobView> => {
      const vault = await vaults.byName(params.vault);
      const server = await inventory.requireServer(vault.id, body.server);
      if (!server.inventory.clouds.some((c) => c.name === body.cloud)) {
        throw new SecondsiteError(
          'SS_NOT_FOUND',
          `server ${server.name} has no cloud named ${body.cloud}`,
          { server: server.name, cloud: body.cloud },
        );
      }
      const job = await deps.jobs.submit({
        vaultId: vault.id,
        type: CLOUD_SYNC_JOB_TYPE,
        input: { vaultId: vault.id, server: server.name, cloud: body.cloud },
      });
      return jobView(job, vault.name);
    },
  });
}
