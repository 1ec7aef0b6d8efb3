/**
 * Failover as durable jobs (R29): one job per command, one step per VM (`planned:VM1`), each
 * step one FailoverOps operation; for a recovery plan, the `plan.run` job runs the same
 * operations group by group (plan-job.ts). Commands are checked before a job starts: a state
 * that does not allow the operation, a second test failover of a VM, an unknown VM or plan are
 * refused and nothing runs.
 */
import { z } from 'zod';
import { badInput } from '../../common/errors/errors.ts';
import type { Job } from '../domain/job.ts';
import type { PlanOperation } from '../domain/recovery-plan.ts';
import { planVms } from '../domain/recovery-plan.ts';
import type { JobRunner } from '../jobs/job-runner.ts';
import type { JobType } from '../jobs/job-types.ts';
import { PLAN_JOB, planJobType, planRunInput, type VmRun } from '../plans/plan-job.ts';
import type { PlanService } from '../plans/plan-service.ts';
import type { VaultService } from '../vaults/vault-service.ts';
import { FAILOVER_OPS, type FailoverOps, type FailoverOp } from './failover-ops.ts';

export const FAILOVER_JOB: Readonly<Record<FailoverOp, string>> = Object.freeze({
  test: 'failover.test',
  'cleanup-test': 'failover.cleanup-test',
  planned: 'failover.planned',
  unplanned: 'failover.unplanned',
  'change-point': 'failover.change-point',
  commit: 'failover.commit',
  reverse: 'replication.reverse',
});

const inputSchema = z
  .object({
    vaultId: z.string().min(1),
    vms: z.array(z.string().min(1)).min(1),
    point: z.string().min(1).optional(),
    network: z.string().min(1).optional(),
    shutdownSource: z.boolean().optional(),
    notes: z.string().max(4000).optional(),
  })
  .strict();
type FailoverInput = z.infer<typeof inputSchema>;

/** What the CLI asks for: one VM or a plan, and the options of the operation. */
export interface FailoverRequest {
  readonly vm?: string;
  readonly plan?: string;
  readonly point?: string;
  readonly network?: string;
  readonly shutdownSource?: boolean;
  readonly notes?: string;
}

function perVmType(ops: FailoverOps, op: FailoverOp): JobType<FailoverInput> {
  return {
    type: FAILOVER_JOB[op],
    input: inputSchema,
    plan: (input) => input.vms.map((vm) => ({ name: `${op}:${vm}` })),
    handler: (name) =>
      name.startsWith(`${op}:`)
        ? (ctx) =>
            ops.run(
              {
                vaultId: ctx.input.vaultId,
                jobId: ctx.job.id,
                op,
                vm: name.slice(op.length + 1),
                ...(ctx.input.point === undefined ? {} : { point: ctx.input.point }),
                ...(ctx.input.network === undefined ? {} : { network: ctx.input.network }),
                ...(ctx.input.shutdownSource === undefined
                  ? {}
                  : { shutdownSource: ctx.input.shutdownSource }),
                ...(ctx.input.notes === undefined ? {} : { notes: ctx.input.notes }),
              },
              ctx.signal,
            )
        : undefined,
  };
}

/** Every failover job type, and the plan job running the same operations per group. */
export function failoverJobTypes(ops: FailoverOps): JobType<unknown>[] {
  const runVm = (run: VmRun, signal: AbortSignal): Promise<unknown> =>
    ops.run(
      {
        vaultId: run.vaultId,
        jobId: run.jobId,
        op: run.operation,
        vm: run.vm,
        ...(run.recoveryPoint === undefined ? {} : { point: run.recoveryPoint }),
        ...run.options,
      },
      signal,
    );
  return [
    ...FAILOVER_OPS.map((op) => perVmType(ops, op)),
    planJobType({ runVm }),
  ] as unknown as JobType<unknown>[];
}

export class FailoverService {
  constructor(
    private readonly deps: {
      vaults: VaultService;
      ops: FailoverOps;
      plans: PlanService;
      jobs: () => JobRunner;
    },
  ) {}

  /** Checks, then starts the job for one VM or a whole plan. */
  async start(vaultName: string, op: FailoverOp, req: FailoverRequest): Promise<Job> {
    const vault = await this.deps.vaults.byName(vaultName);
    if ((req.vm === undefined) === (req.plan === undefined)) {
      throw badInput('vm', 'name either --vm VM or --plan PLAN');
    }
    const options = {
      ...(req.point === undefined ? {} : { point: req.point }),
      ...(req.network === undefined ? {} : { network: req.network }),
      ...(req.shutdownSource === undefined ? {} : { shutdownSource: req.shutdownSource }),
      ...(req.notes === undefined ? {} : { notes: req.notes }),
    };
    if (req.plan !== undefined) {
      if (op === 'change-point') throw badInput('plan', 'change-point takes one --vm');
      const plan = await this.deps.plans.require(vault.id, req.plan);
      for (const vm of planVms(plan)) await this.deps.ops.check(vault.id, op, vm, options);
      return this.deps.jobs().submit({
        vaultId: vault.id,
        type: PLAN_JOB,
        input: planRunInput(plan, op as PlanOperation, req.point, {
          ...(req.network === undefined ? {} : { network: req.network }),
          ...(req.shutdownSource === undefined ? {} : { shutdownSource: req.shutdownSource }),
          ...(req.notes === undefined ? {} : { notes: req.notes }),
        }),
      });
    }
    const vm = req.vm as string;
    await this.deps.ops.check(vault.id, op, vm, options);
    return this.deps.jobs().submit({
      vaultId: vault.id,
      type: FAILOVER_JOB[op],
      input: { vaultId: vault.id, vms: [vm], ...options },
    });
  }
}
