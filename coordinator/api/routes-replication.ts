/** `replication …`, `item …` and `recovery-point list` (R14, R20, R21; CLI.md). */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ItemView, JobView, RecoveryPointView } from '../../common/api-client/types.ts';
import type { ProtectionService } from '../replication/protection-service.ts';
import type { VaultService } from '../vaults/vault-service.ts';
import { route } from './route.ts';
import { jobView } from './views.ts';

const vmName = z.string().min(1).max(80);

export function replicationRoutes(
  app: FastifyInstance,
  deps: { vaults: VaultService; protection: ProtectionService },
): void {
  const { protection } = deps;
  route(app, {
    method: 'POST',
    url: '/api/v1/vaults/:vault/replication/enable',
    params: z.object({ vault: z.string() }).strict(),
    body: z.object({ sourceCloud: z.string().min(1), vms: z.array(vmName).min(1) }).strict(),
    status: 202,
    handler: async ({ params, body }): Promise<JobView> =>
      jobView(await protection.enable(params.vault, body.sourceCloud, body.vms), params.vault),
  });
  route(app, {
    method: 'POST',
    url: '/api/v1/vaults/:vault/replication/:action',
    params: z
      .object({ vault: z.string(), action: z.enum(['disable', 'pause', 'resume', 'resync']) })
      .strict(),
    body: z.object({ vms: z.array(vmName).min(1) }).strict(),
    status: 202,
    handler: async ({ params, body }): Promise<JobView> =>
      jobView(await protection.act(params.vault, params.action, body.vms), params.vault),
  });
  route(app, {
    method: 'GET',
    url: '/api/v1/vaults/:vault/items',
    params: z.object({ vault: z.string() }).strict(),
    handler: async ({ params }): Promise<{ items: ItemView[] }> => ({
      items: await protection.list(params.vault),
    }),
  });
  route(app, {
    method: 'GET',
    url: '/api/v1/vaults/:vault/items/:vm',
    params: z.object({ vault: z.string(), vm: vmName }).strict(),
    handler: async ({ params }): Promise<ItemView> => protection.show(params.vault, params.vm),
  });
  route(app, {
    method: 'GET',
    url: '/api/v1/vaults/:vault/items/:vm/recovery-points',
    params: z.object({ vault: z.string(), vm: vmName }).strict(),
    handler: async ({ params }): Promise<{ points: RecoveryPointView[] }> => ({
      points: await protection.recoveryPoints(params.vault, params.vm),
    }),
  });
}
