/** R22: `capacity plan`, `host set-bandwidth`, `replication set-priority` (CLI.md). */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { BandwidthView, CapacityPlanView, ItemView } from '../../common/api-client/types.ts';
import type { CapacityService } from '../capacity/capacity-service.ts';
import type { BandwidthService } from '../replication/bandwidth-service.ts';
import { route } from './route.ts';

export function capacityRoutes(
  app: FastifyInstance,
  deps: { capacity: CapacityService; bandwidth: BandwidthService },
): void {
  route(app, {
    method: 'GET',
    url: '/api/v1/vaults/:vault/capacity/plan',
    params: z.object({ vault: z.string() }).strict(),
    query: z
      .object({
        cloud: z.string().optional(),
        policy: z.string().optional(),
        bandwidth: z.string().optional(),
      })
      .strict(),
    handler: async ({ params, query }): Promise<CapacityPlanView> =>
      deps.capacity.plan(params.vault, {
        ...(query.cloud === undefined ? {} : { cloud: query.cloud }),
        ...(query.policy === undefined ? {} : { policy: query.policy }),
        ...(query.bandwidth === undefined ? {} : { bandwidth: query.bandwidth }),
      }),
  });
  route(app, {
    method: 'PUT',
    url: '/api/v1/vaults/:vault/bandwidth',
    params: z.object({ vault: z.string() }).strict(),
    body: z
      .object({
        host: z.string().min(1),
        limit: z.union([z.number(), z.string(), z.null()]).optional(),
        unlimited: z.boolean().optional(),
        windows: z.array(z.string()).max(24).optional(),
      })
      .strict(),
    handler: async ({ params, body }): Promise<BandwidthView> =>
      deps.bandwidth.set(params.vault, body),
  });
  route(app, {
    method: 'POST',
    url: '/api/v1/vaults/:vault/replication/priority',
    params: z.object({ vault: z.string() }).strict(),
    body: z
      .object({ priority: z.string(), vms: z.array(z.string().min(1).max(80)).min(1) })
      .strict(),
    handler: async ({ params, body }): Promise<{ items: ItemView[]; hosts: BandwidthView[] }> =>
      deps.bandwidth.setPriority(params.vault, body.priority, body.vms),
  });
}
