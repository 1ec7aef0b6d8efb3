/** Issue #7: `host revoke` (CLI.md, docs/security.md "Revocation"). */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { RevocationView } from '../../common/api-client/types.ts';
import type { RevocationService } from '../revocation/revocation-service.ts';
import { route } from './route.ts';

export function revocationRoutes(app: FastifyInstance, revocation: RevocationService): void {
  route(app, {
    method: 'POST',
    url: '/api/v1/vaults/:vault/revoked-hosts',
    params: z.object({ vault: z.string() }).strict(),
    body: z.object({ host: z.string().min(1).max(200) }).strict(),
    handler: async ({ params, body }): Promise<RevocationView> =>
      revocation.revoke(params.vault, body.host),
  });
}
