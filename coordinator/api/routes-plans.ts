/** Recovery plans (R28): create, add VMs to a group, add actions, show and list. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { PlanView } from '../../common/api-client/types.ts';
import { formatQualified } from '../domain/mapping.ts';
import type { RecoveryPlan } from '../domain/recovery-plan.ts';
import type { PlanService } from '../plans/plan-service.ts';
import type { VaultService } from '../vaults/vault-service.ts';
import { route } from './route.ts';

const vaultParams = z.object({ vault: z.string() }).strict();
const planParams = z.object({ vault: z.string(), plan: z.string() }).strict();

export function planView(p: RecoveryPlan): PlanView {
  return {
    name: p.name,
    sourceCloud: formatQualified(p.sourceCloud),
    targetCloud: formatQualified(p.targetCloud),
    groups: p.groups.map((g) => ({
      group: g.group,
      vms: [...g.vms],
      before: g.before.map((a) => ({ ...a })),
      after: g.after.map((a) => ({ ...a })),
    })),
  };
}

export function planRoutes(
  app: FastifyInstance,
  deps: { vaults: VaultService; plans: PlanService },
): void {
  const { vaults, plans } = deps;
  route(app, {
    method: 'POST',
    url: '/api/v1/vaults/:vault/plans',
    params: vaultParams,
    // Values are checked by the domain, which names the field; the schema refuses unknown keys.
    body: z
      .object({ name: z.unknown(), sourceCloud: z.unknown(), targetCloud: z.unknown() })
      .strict(),
    status: 201,
    handler: async ({ params, body }) => {
      const vault = await vaults.byName(params.vault);
      return planView(await plans.create(vault.id, body));
    },
  });
  route(app, {
    method: 'GET',
    url: '/api/v1/vaults/:vault/plans',
    params: vaultParams,
    handler: async ({ params }): Promise<{ plans: PlanView[] }> => {
      const vault = await vaults.byName(params.vault);
      return { plans: (await plans.list(vault.id)).map(planView) };
    },
  });
  route(app, {
    method: 'GET',
    url: '/api/v1/vaults/:vault/plans/:plan',
    params: planParams,
    handler: async ({ params }) => {
      const vault = await vaults.byName(params.vault);
      return planView(await plans.require(vault.id, params.plan));
    },
  });
  route(app, {
    method: 'POST',
    url: '/api/v1/vaults/:vault/plans/:plan/vms',
    params: planParams,
    body: z.object({ group: z.unknown(), vms: z.array(z.unknown()).max(500) }).strict(),
    handler: async ({ params, body }) => {
      const vault = await vaults.byName(params.vault);
      return planView(await plans.addVms(vault.id, params.plan, body.group, body.vms));
    },
  });
  route(app, {
    method: 'POST',
    url: '/api/v1/vaults/:vault/plans/:plan/actions',
    params: planParams,
    body: z
      .object({
        group: z.unknown(),
        side: z.unknown(),
        script: z.unknown().optional(),
        manual: z.unknown().optional(),
        timeoutSeconds: z.unknown().optional(),
      })
      .strict(),
    handler: async ({ params, body }) => {
      const vault = await vaults.byName(params.vault);
      return planView(await plans.addAction(vault.id, params.plan, body));
    },
  });
}
