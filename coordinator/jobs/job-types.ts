/**
 * What a job type is: a pure plan (the list of steps for an input) and one handler per step.
 * Features register their types (registration, cloud sync, enable protection, failovers…)
 * in a JobTypeRegistry handed to the runner.
 */
import type { z } from 'zod';
import type { Logger } from '../../common/log/log.ts';
import type { Job, StepPlan } from '../domain/job.ts';

export interface StepContext<I> {
  readonly job: Job;
  readonly input: I;
  readonly stepIndex: number;
  /** Results of the steps that finished before this one, by step name. */
  readonly results: Readonly<Record<string, unknown>>;
  /** Aborted on cancel and on shutdown; handlers stop promptly when it fires. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** 0..1; shown live, kept with the step's next saved state. */
  progress(fraction: number): void;
}

/** Runs one step; its return value (JSON) is saved as the step's result. Must be idempotent. */
export type StepHandler<I> = (ctx: StepContext<I>) => Promise<unknown>;

export interface JobType<I = unknown> {
  readonly type: string;
  /** Validates the input when the job is created; unknown keys are refused. */
  readonly input: z.ZodType<I>;
  /** Pure: the steps to run for this input. */
  plan(input: I): readonly StepPlan[];
  /** The handler of each automatic step name the plan can produce. */
  handler(stepName: string): StepHandler<I> | undefined;
}

export class JobTypeRegistry {
  private readonly types = new Map<string, JobType>();

  register<I>(jobType: JobType<I>): this {
    if (this.types.has(jobType.type)) throw new Error(`job type ${jobType.type} registered twice`);
    this.types.set(jobType.type, jobType as unknown as JobType);
    return this;
  }

  get(type: string): JobType | undefined {
    return this.types.get(type);
  }
}
