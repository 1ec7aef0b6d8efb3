/**
 * The `provider.register` job (R3, R5): after the key was checked, issue the provider's
 * certificates, add the server to the vault, and sync all its clouds when asked. Each step is
 * idempotent; a coordinator restart resumes at the first unfinished one.
 */
import { z } from 'zod';
import { fingerprintOfPem } from '../../certs/inspect.ts';
import type { JobType, StepHandler } from '../jobs/job-types.ts';
import type { InventoryService } from '../inventory/inventory-service.ts';
import type { VaultService } from '../vaults/vault-service.ts';
import { identityNameOf } from '../domain/server.ts';
import type { ProviderCertificates, ProviderSigner } from './provider-signer.ts';
import type { Clock } from '../../common/time/clock.ts';

export const REGISTER_JOB_TYPE = 'provider.register';

const cloudSchema = z
  .object({
    name: z.string().min(1),
    hostGroups: z.array(z.string()),
    logicalNetworks: z.array(z.string()),
    vmNetworks: z.array(z.string()),
  })
  .strict();

export const inventorySchema = z
  .object({ clouds: z.array(cloudSchema), hosts: z.array(z.string()) })
  .strict();

const inputSchema = z
  .object({
    registrationId: z.string().min(1),
    keyId: z.string().min(1),
    vaultId: z.string().min(1),
    serverName: z.string().min(1),
    clientCsrPem: z.string().min(1),
    caCsrPem: z.string().min(1),
    version: z.string(),
    syncClouds: z.enum(['all', 'none']),
    inventory: inventorySchema,
  })
  .strict();

export type RegisterJobInput = z.infer<typeof inputSchema>;

export interface RegisterJobDeps {
  readonly vaults: VaultService;
  readonly inventory: InventoryService;
  readonly signer: ProviderSigner;
  readonly clock: Clock;
}

export function registerJobType(deps: RegisterJobDeps): JobType<RegisterJobInput> {
  const handlers: Record<string, StepHandler<RegisterJobInput>> = {
    'issue-certificates': async ({ input }): Promise<ProviderCertificates> => {
      const vault = await deps.vaults.byId(input.vaultId);
      if (vault === undefined) throw new Error(`vault ${input.vaultId} is gone`);
      return deps.signer.sign({
        vault: vault.name,
        identityName: identityNameOf(input.serverName),
        clientCsrPem: input.clientCsrPem,
        caCsrPem: input.caCsrPem,
        now: deps.clock.now(),
      });
    },
    'add-server': async ({ input, results }) => {
      const certs = results['issue-certificates'] as ProviderCertificates;
      const s = await deps.inventory.putServer({
        clientCertFingerprint: fingerprintOfPem(certs.clientCertPem),
        vaultId: input.vaultId,
        name: input.serverName,
        registrationId: input.registrationId,
        version: input.version,
        inventory: input.inventory,
      });
      return { server: s.name };
    },
    'sync-clouds': async ({ input }) => {
      for (const cloud of input.inventory.clouds) {
        await deps.inventory.saveCloud(input.vaultId, input.serverName, cloud);
      }
      return { synced: input.inventory.clouds.map((c) => c.name) };
    },
  };
  return {
    type: REGISTER_JOB_TYPE,
    input: inputSchema,
    plan: (input) => [
      { name: 'issue-certificates' },
      { name: 'add-server' },
      ...(input.syncClouds === 'all' ? [{ name: 'sync-clouds' }] : []),
    ],
    handler: (name) => handlers[name],
  };
}
