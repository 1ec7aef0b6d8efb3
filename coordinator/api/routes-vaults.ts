import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { VaultView } from '../../common/api-client/types.ts';
import type { VaultService } from '../vaults/vault-service.ts';
import { route } from './route.ts';
import { vaultView } from './views.ts';

export function vaultRoutes(app: FastifyInstance, vaults: VaultService): void {
  route(app, {
    method: 'POST',
    url: '/api/v1/vaults',
    body: z.object({ name: z.string() }).strict(),
    status: 201,
    handler: async ({ body }): Promise<VaultView> => vaultView(await vaults.create(body.name)),
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/vaults',
    handler: async (): Promise<{ vaults: VaultView[] }> => ({
      vaults: (await vaults.list()).map(vaultView),
    }),
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/vaults/:vault',
    params: z.object({ vault: z.string() }).strict(),
    handler: async ({ params }): Promise<VaultView> => vaultView(await vaults.byName(params.vault)),
  });
}
