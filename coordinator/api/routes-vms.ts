/** `vm list` and `vm show` (R7, CLI.md "VMs"): the VMs hosts reported through their providers. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { VmView } from '../../common/api-client/types.ts';
import type { VmInventory } from '../inventory/vm-inventory.ts';
import type { VaultService } from '../vaults/vault-service.ts';
import { route } from './route.ts';

export function vmRoutes(
  app: FastifyInstance,
  deps: { vaults: VaultService; vms: VmInventory },
): void {
  route(app, {
    method: 'GET',
    url: '/api/v1/vaults/:vault/vms',
    params: z.object({ vault: z.string() }).strict(),
    query: z.object({ cloud: z.string().min(1).optional() }).strict(),
    handler: async ({ params, query }): Promise<{ vms: VmView[] }> => {
      const vault = await deps.vaults.byName(params.vault);
      return { vms: await deps.vms.list(vault.id, query.cloud) };
    },
  });
  route(app, {
    method: 'GET',
    // NAME is SERVER/VM, sent percent-encoded as one path segment.
    url: '/api/v1/vaults/:vault/vms/:name',
    params: z.object({ vault: z.string(), name: z.string().min(1) }).strict(),
    handler: async ({ params }): Promise<VmView> => {
      const vault = await deps.vaults.byName(params.vault);
      return deps.vms.show(vault.id, params.name);
    },
  });
}
