/**
 * The `plan.run` job: one plan operation (test, planned, unplanned, commit, reverse,
 * cleanup-test) for a whole recovery plan (R28), as the steps of planSteps():
 *   before:G:I  a script (runScript) or a manual step the job waits at until `job resume`;
 *   group:G     every VM of group G, started together through the injected `runVm`; the step
 *               ends when all have finished, so group G+1 starts only once every VM of G is
 *               running. One VM failing fails the step (after the others have finished: none
 *               is abandoned half-way) and the job, naming the VMs that failed;
 *   after:G:I   as before:G:I.
 *
 * The job's input holds a snapshot of the plan and the one recovery-point choice for every VM
 * of the plan, so a restarted coordinator resumes exactly the run it had.
 *
 * For the lead: the failover operations do not exist yet, so nothing registers this type in
 * coordinator/main.ts. When they do: `registry.register(planJobType({ runVm }))` with a
 * `runVm` that is idempotent (a `group:G` step runs again, whole, after a restart), and submit
 * `{ vaultId, type: PLAN_JOB, input: planRunInput(plan, operation, point) }`.
 */
import { z } from 'zod';
import { SecondsiteError, isSecondsiteError } from '../../common/errors/errors.ts';
import {
  PLAN_OPERATIONS,
  actionAt,
  parseStepName,
  planSteps,
  type PlanOperation,
  type RecoveryPlan,
} from '../domain/recovery-plan.ts';
import type { JobType, StepContext, StepHandler } from '../jobs/job-types.ts';
import { runScript, type ScriptResult } from './script-action.ts';

export const PLAN_JOB = 'plan.run';

/** One VM's part of a plan operation. */
export interface VmRun {
  readonly operation: PlanOperation;
  readonly vm: string;
  readonly plan: string;
  /** latest | latest-app-consistent | a point id; only for test and unplanned. */
  readonly recoveryPoint?: string;
  /** The vault and job running it (host command ids are made from the job). */
  readonly vaultId: string;
  readonly jobId: string;
  /** Operation options given for the whole plan (test network, shutdown-source, notes). */
  readonly options: PlanRunOptions;
}

export interface PlanRunOptions {
  readonly network?: string;
  readonly shutdownSource?: boolean;
  readonly notes?: string;
}

export interface PlanJobDeps {
  /**
   * Runs one VM's operation to its end (for a failover: the VM is running at the target).
   * Must be idempotent and stop promptly when `signal` aborts, leaving the VM in a stated state.
   */
  readonly runVm: (run: VmRun, signal: AbortSignal) => Promise<unknown>;
  /** Tests only: the script runner. @default runScript */
  readonly runScript?: typeof runScript;
}

const qualified = z.object({ server: z.string(), name: z.string() }).strict();
const action = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('script'), path: z.string(), timeoutSeconds: z.number() }).strict(),
  z.object({ kind: z.literal('manual'), text: z.string() }).strict(),
]);
const planSchema = z
  .object({
    name: z.string(),
    sourceCloud: qualified,
    targetCloud: qualified,
    groups: z.array(
      z
        .object({
          group: z.number().int(),
          vms: z.array(z.string()),
          before: z.array(action),
          after: z.array(action),
        })
        .strict(),
    ),
  })
  .strict();

const inputSchema = z
  .object({
    plan: planSchema,
    operation: z.enum(PLAN_OPERATIONS),
    recoveryPoint: z.string().min(1).optional(),
    options: z
      .object({
        network: z.string().optional(),
        shutdownSource: z.boolean().optional(),
        notes: z.string().optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

export type PlanRunInput = z.infer<typeof inputSchema>;

/** The job input for running `operation` on `plan` (a snapshot: later edits do not apply). */
export function planRunInput(
  plan: RecoveryPlan,
  operation: PlanOperation,
  recoveryPoint?: string,
  options: PlanRunOptions = {},
): PlanRunInput {
  return {
    options: { ...options },
    plan: {
      name: plan.name,
      sourceCloud: { ...plan.sourceCloud },
      targetCloud: { ...plan.targetCloud },
      groups: plan.groups.map((g) => ({
        group: g.group,
        vms: [...g.vms],
        before: g.before.map((a) => ({ ...a })),
        after: g.after.map((a) => ({ ...a })),
      })),
    },
    operation,
    ...(recoveryPoint === undefined ? {} : { recoveryPoint }),
  };
}

function scriptStep(deps: PlanJobDeps, name: string): StepHandler<PlanRunInput> {
  return async (ctx): Promise<ScriptResult> => {
    const step = parseStepName(name);
    const a = step === undefined ? undefined : actionAt(ctx.input.plan, step);
    if (step?.kind !== 'action' || a?.kind !== 'script') {
      throw new SecondsiteError('SS_INTERNAL', `step ${name} is not a script of this plan`);
    }
    ctx.log.info({ script: a.path }, 'running plan script');
    return (deps.runScript ?? runScript)({
      path: a.path,
      timeoutMs: a.timeoutSeconds * 1000,
      env: {
        plan: ctx.input.plan.name,
        failoverType: ctx.input.operation,
        group: step.group,
        side: step.side,
        job: ctx.job.id,
      },
      signal: ctx.signal,
    });
  };
}

type VmOutcome =
  { vm: string; ok: true; result: unknown } | { vm: string; ok: false; error: unknown };

function groupStep(deps: PlanJobDeps, group: number): StepHandler<PlanRunInput> {
  return async (ctx: StepContext<PlanRunInput>) => {
    const vms = ctx.input.plan.groups[group - 1]?.vms ?? [];
    let done = 0;
    const outcomes = await Promise.all(
      vms.map(async (vm): Promise<VmOutcome> => {
        const run: VmRun = {
          operation: ctx.input.operation,
          vm,
          plan: ctx.input.plan.name,
          vaultId: ctx.job.vaultId,
          jobId: ctx.job.id,
          options: ctx.input.options,
          ...(ctx.input.recoveryPoint === undefined
            ? {}
            : { recoveryPoint: ctx.input.recoveryPoint }),
        };
        try {
          const result = await deps.runVm(run, ctx.signal);
          return { vm, ok: true, result: result ?? null };
        } catch (error) {
          return { vm, ok: false, error };
        } finally {
          ctx.progress(++done / vms.length);
        }
      }),
    );
    ctx.signal.throwIfAborted();
    const failed = outcomes.filter((o) => !o.ok);
    if (failed.length > 0) {
      const errors = failed.map((o) => ({
        vm: o.vm,
        ...(isSecondsiteError(o.error)
          ? o.error.toJSON()
          : { code: 'SS_INTERNAL', message: String((o.error as Error)?.message ?? o.error) }),
      }));
      const first = failed[0]!.error;
      throw new SecondsiteError(
        isSecondsiteError(first) ? first.code : 'SS_INTERNAL',
        `group ${group}: ${errors.map((e) => `${e.vm}: ${e.message}`).join('; ')}`,
        { group, failed: errors, succeeded: outcomes.filter((o) => o.ok).map((o) => o.vm) },
      );
    }
    return { group, vms: Object.fromEntries(outcomes.map((o) => [o.vm, o.ok ? o.result : null])) };
  };
}

export function planJobType(deps: PlanJobDeps): JobType<PlanRunInput> {
  return {
    type: PLAN_JOB,
    input: inputSchema,
    plan: (input) => planSteps(input.plan, input.operation),
    handler: (name) => {
      const step = parseStepName(name);
      if (step === undefined) return undefined;
      return step.kind === 'group' ? groupStep(deps, step.group) : scriptStep(deps, name);
    },
  };
}
