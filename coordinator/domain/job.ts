/**
 * A job's shape and its state machine, as pure functions of (job, input, now). The runner
 * (coordinator/jobs/job-runner.ts) persists each returned job before acting on it.
 *
 * Job states:   running → succeeded | failed | cancelled
 *               running ⇄ waiting (a manual step pauses the job until `job resume`)
 *               waiting → cancelled
 * Step states:  pending → running → succeeded | failed | cancelled
 *               pending → waiting → succeeded (confirmed) | cancelled
 * A step found `running` after a restart ran when the process died: it runs again, so every
 * step handler must be idempotent.
 */
import type { ErrorCode } from '../../common/errors/errors.ts';

export type JobState = 'running' | 'waiting' | 'succeeded' | 'failed' | 'cancelled';
export type StepState = 'pending' | 'running' | 'waiting' | 'succeeded' | 'failed' | 'cancelled';

export interface JobError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly details: Readonly<Record<string, unknown>>;
}

export interface StepPlan {
  readonly name: string;
  /** 'manual' pauses the job until someone confirms the action (R28). @default 'auto' */
  readonly kind?: 'auto' | 'manual';
  /** What a person must do, for manual steps. */
  readonly instruction?: string;
}

export interface Step {
  readonly name: string;
  readonly kind: 'auto' | 'manual';
  readonly instruction?: string;
  readonly state: StepState;
  readonly startedAt?: string;
  readonly endedAt?: string;
  /** 0..1, when the handler reports it. */
  readonly progress?: number;
  readonly result?: unknown;
  readonly error?: JobError;
}

export interface Job {
  readonly id: string;
  readonly vaultId: string;
  readonly type: string;
  readonly input: unknown;
  readonly state: JobState;
  readonly steps: readonly Step[];
  readonly error: JobError | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly endedAt?: string;
}

const iso = (now: number): string => new Date(now).toISOString();

export function isFinished(state: JobState): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'cancelled';
}

export function newJob(a: {
  id: string;
  vaultId: string;
  type: string;
  input: unknown;
  plan: readonly StepPlan[];
  now: number;
}): Job {
  if (a.plan.length === 0) throw new Error(`job type ${a.type} planned no steps`);
  const steps = a.plan.map((p): Step => ({
    name: p.name,
    kind: p.kind ?? 'auto',
    ...(p.instruction === undefined ? {} : { instruction: p.instruction }),
    state: 'pending',
  }));
  return {
    id: a.id,
    vaultId: a.vaultId,
    type: a.type,
    input: a.input,
    state: 'running',
    steps,
    error: null,
    createdAt: iso(a.now),
    updatedAt: iso(a.now),
  };
}

/** Index of the first step that has not finished, or -1 when all have. */
export function firstUnfinishedStep(job: Job): number {
  return job.steps.findIndex((s) => s.state !== 'succeeded');
}

function withStep(job: Job, index: number, patch: Partial<Step>, now: number): Job {
  const steps = job.steps.map((s, i) => (i === index ? { ...s, ...patch } : s));
  return { ...job, steps, updatedAt: iso(now) };
}

function stepAt(job: Job, index: number): Step {
  const step = job.steps[index];
  if (step === undefined) throw new Error(`job ${job.id} has no step ${index}`);
  return step;
}

/** The next thing the runner must do with a job that is in the `running` state. */
export type NextAction =
  | { readonly action: 'run'; readonly index: number }
  | { readonly action: 'wait'; readonly index: number }
  | { readonly action: 'finish' };

export function nextAction(job: Job): NextAction {
  const index = firstUnfinishedStep(job);
  if (index < 0) return { action: 'finish' };
  const step = stepAt(job, index);
  return step.kind === 'manual' ? { action: 'wait', index } : { action: 'run', index };
}

export function startStep(job: Job, index: number, now: number): Job {
  const { startedAt } = stepAt(job, index);
  // A step re-run after a restart keeps its first start time.
  return withStep(job, index, { state: 'running', startedAt: startedAt ?? iso(now) }, now);
}

export function reportProgress(job: Job, index: number, progress: number, now: number): Job {
  return withStep(job, index, { progress: Math.min(1, Math.max(0, progress)) }, now);
}

export function completeStep(job: Job, index: number, result: unknown, now: number): Job {
  const patch: Partial<Step> = { state: 'succeeded', endedAt: iso(now), progress: 1 };
  return withStep(job, index, result === undefined ? patch : { ...patch, result }, now);
}

export function failStep(job: Job, index: number, error: JobError, now: number): Job {
  const failed = withStep(job, index, { state: 'failed', endedAt: iso(now), error }, now);
  return { ...failed, state: 'failed', error, endedAt: iso(now) };
}

export function waitAtStep(job: Job, index: number, now: number): Job {
  const waiting = withStep(job, index, { state: 'waiting', startedAt: iso(now) }, now);
  return { ...waiting, state: 'waiting' };
}

/** `job resume`: the person confirms the manual action the job waits for. */
export function confirmWaitingStep(job: Job, now: number): Job {
  const index = job.steps.findIndex((s) => s.state === 'waiting');
  if (job.state !== 'waiting' || index < 0) {
    throw new Error(`job ${job.id} is ${job.state}, not waiting`);
  }
  const confirmed = withStep(job, index, { state: 'succeeded', endedAt: iso(now) }, now);
  return { ...confirmed, state: 'running' };
}

export function succeedJob(job: Job, now: number): Job {
  return { ...job, state: 'succeeded', updatedAt: iso(now), endedAt: iso(now) };
}

/** Ends the job as cancelled; the step in progress (if any) is marked cancelled too. */
export function cancelJob(job: Job, now: number): Job {
  const steps = job.steps.map((s) =>
    s.state === 'running' || s.state === 'waiting'
      ? { ...s, state: 'cancelled' as const, endedAt: iso(now) }
      : s,
  );
  const error: JobError = { code: 'SS_CANCELLED', message: 'cancelled by request', details: {} };
  return {
    ...job,
    steps,
    state: 'cancelled',
    error,
    updatedAt: iso(now),
    endedAt: iso(now),
  };
}
