/** `failover …` and `replication reverse` (R23–R28; CLI.md "Failover and plans"). */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { JobView } from '../../common/api-client/types.ts';
import { FAILOVER_OPS } from '../failover/failover-ops.ts';
import type { FailoverService } from '../failover/failover-jobs.ts';
import { route } from './route.ts';
import { jobView } from './views.ts';

export function failoverRoutes(app: FastifyInstance, deps: { failover: FailoverService }): void {
  route(app, {
    method: 'POST',
    url: '/api/v1/vaults/:vault/failover/:operation',
    params: z.object({ vault: z.string(), operation: z.enum(FAILOVER_OPS) }).strict(),
    body: z
      .object({
        vm: z.string().min(1).max(80).optional(),
        plan: z.string().min(1).max(80).optional(),
        recoveryPoint: z.string().min(1).max(200).optional(),
        network: z.string().min(1).max(200).optional(),
        shutdownSource: z.boolean().optional(),
        notes: z.string().max(4000).optional(),
      })
      .strict(),
    status: 202,
    handler: async ({ params, body }): Promise<JobView> =>
      jobView(
        await deps.failover.start(params.vault, params.operation, {
          ...(body.vm === undefined ? {} : { vm: body.vm }),
          ...(body.plan === undefined ? {} : { plan: body.plan }),
          ...(body.recoveryPoint === undefined ? {} : { point: body.recoveryPoint }),
          ...(body.network === undefined ? {} : { network: body.network }),
          ...(body.shutdownSource === undefined ? {} : { shutdownSource: body.shutdownSource }),
          ...(body.notes === undefined ? {} : { notes: body.notes }),
        }),
        params.vault,
      ),
  });
}
