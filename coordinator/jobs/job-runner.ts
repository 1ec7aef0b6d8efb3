/**
 * Runs durable jobs. Each step's new state is saved before the next action, so after a
 * restart `run()` resumes every `running` job at its first unfinished step (a step that was
 * running when the process died runs again: handlers are idempotent). Manual steps park the
 * job in `waiting` until resume(); cancel() aborts the step in progress.
 *
 * Shutdown aborts the handlers but saves nothing about the interruption: the store keeps the
 * job as it was, which is exactly what a restart needs.
 */
import { EventEmitter } from 'node:events';
import { SecondsiteError, badInput, isSecondsiteError } from '../../common/errors/errors.ts';
import type { Logger } from '../../common/log/log.ts';
import type { Clock } from '../../common/time/clock.ts';
import * as J from '../domain/job.ts';
import type { Job, JobError } from '../domain/job.ts';
import { newId } from '../ids.ts';
import type { Store } from '../store/store.ts';
import { createJob, listJobs, loadJob, runningJobs, saveJob } from './job-repo.ts';
import type { JobTypeRegistry, StepContext } from './job-types.ts';

export interface JobRunnerOptions {
  readonly store: Store;
  readonly registry: JobTypeRegistry;
  readonly clock: Clock;
  readonly log: Logger;
}

interface Active {
  current: Job;
  readonly controller: AbortController;
  cancelled: boolean;
  /** A resume arrived while the previous execution was still winding down. */
  restartAfter: boolean;
  done: Promise<void>;
}

function toJobError(e: unknown): JobError {
  if (isSecondsiteError(e)) return e.toJSON();
  const message = e instanceof Error ? e.message : String(e);
  return { code: 'SS_INTERNAL', message, details: {} };
}

export class JobRunner {
  private readonly active = new Map<string, Active>();
  /** Per-job queue so resume and cancel of one job never interleave their read-then-save. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly events = new EventEmitter();
  private stopping = false;

  constructor(private readonly opts: JobRunnerOptions) {
    this.events.setMaxListeners(0);
  }

  /** Resumes the jobs a previous process left running, then runs until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    for (const job of await runningJobs(this.opts.store)) {
      this.opts.log.info({ job: job.id, type: job.type }, 'resuming job');
      this.start(job);
    }
    if (signal.aborted) return;
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
  }

  async shutdown(): Promise<void> {
    this.stopping = true;
    for (const a of this.active.values()) a.controller.abort(new Error('shutting down'));
    await Promise.all([...this.active.values()].map((a) => a.done));
  }

  /** Live follow: called with the job after every change (saved or progress). */
  onUpdate(listener: (job: Job) => void): () => void {
    this.events.on('job', listener);
    return () => this.events.off('job', listener);
  }

  async submit(a: { vaultId: string; type: string; input: unknown }): Promise<Job> {
    const jobType = this.opts.registry.get(a.type);
    if (jobType === undefined) throw badInput('type', `unknown job type ${a.type}`);
    const parsed = jobType.input.safeParse(a.input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = ['input', ...(issue?.path ?? [])].join('.');
      throw badInput(field, issue?.message ?? 'invalid');
    }
    const job = J.newJob({
      id: newId('j'),
      vaultId: a.vaultId,
      type: a.type,
      input: parsed.data,
      plan: jobType.plan(parsed.data),
      now: this.opts.clock.now(),
    });
    await createJob(this.opts.store, job);
    this.emit(job);
    this.start(job);
    return job;
  }

  /** The freshest view of a job: the live one while it runs, else the stored one. */
  async get(id: string): Promise<Job> {
    const live = this.active.get(id)?.current;
    const job = live ?? (await loadJob(this.opts.store, id));
    if (job === undefined) throw new SecondsiteError('SS_NOT_FOUND', `no job ${id}`, { job: id });
    return job;
  }

  async list(vaultId: string): Promise<Job[]> {
    const stored = await listJobs(this.opts.store, vaultId);
    return stored.map((j) => this.active.get(j.id)?.current ?? j);
  }

  /** Confirms the manual action a waiting job waits for, and continues it. */
  resume(id: string): Promise<Job> {
    return this.exclusive(id, async () => {
      const job = await this.get(id);
      if (job.state !== 'waiting') {
        throw new SecondsiteError('SS_CONFLICT', `job ${id} is ${job.state}, not waiting`, {
          job: id,
          state: job.state,
        });
      }
      const confirmed = J.confirmWaitingStep(job, this.opts.clock.now());
      await this.save(confirmed);
      this.start(confirmed);
      return confirmed;
    });
  }

  /** Cancels a running or waiting job; resolves once the cancellation is saved. */
  cancel(id: string): Promise<Job> {
    return this.exclusive(id, async () => {
      const active = this.active.get(id);
      if (active !== undefined) {
        active.cancelled = true;
        active.controller.abort(new SecondsiteError('SS_CANCELLED', 'cancelled by request'));
        await active.done;
      }
      const job = await this.get(id);
      if (job.state === 'cancelled' && active !== undefined) return job;
      if (J.isFinished(job.state)) {
        throw new SecondsiteError('SS_CONFLICT', `job ${id} already ${job.state}`, {
          job: id,
          state: job.state,
        });
      }
      return this.save(J.cancelJob(job, this.opts.clock.now()));
    });
  }

  private exclusive<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.locks.get(id) ?? Promise.resolve()).then(fn, fn);
    const settled = run.catch(() => undefined);
    this.locks.set(id, settled);
    void settled.then(() => {
      if (this.locks.get(id) === settled) this.locks.delete(id);
    });
    return run;
  }

  private emit(job: Job): void {
    this.events.emit('job', job);
  }

  private async save(job: Job): Promise<Job> {
    await saveJob(this.opts.store, job);
    const active = this.active.get(job.id);
    if (active !== undefined) active.current = job;
    this.emit(job);
    return job;
  }

  private start(job: Job): void {
    if (this.stopping) return;
    const existing = this.active.get(job.id);
    if (existing !== undefined) {
      existing.restartAfter = true;
      return;
    }
    const active: Active = {
      current: job,
      controller: new AbortController(),
      cancelled: false,
      restartAfter: false,
      done: Promise.resolve(),
    };
    this.active.set(job.id, active);
    active.done = this.execute(active)
      .catch((e: unknown) => {
        // Usually the store failing: the job stays as last saved and resumes on restart.
        this.opts.log.error({ job: job.id, err: e }, 'job stopped: its state could not be saved');
      })
      .finally(() => {
        this.active.delete(job.id);
        if (active.restartAfter && active.current.state === 'running') this.start(active.current);
      });
  }

  private async execute(active: Active): Promise<void> {
    const now = (): number => this.opts.clock.now();
    for (;;) {
      if (active.cancelled) {
        await this.save(J.cancelJob(active.current, now()));
        return;
      }
      if (this.stopping) return;
      const next = J.nextAction(active.current);
      if (next.action === 'finish') {
        await this.save(J.succeedJob(active.current, now()));
        return;
      }
      if (next.action === 'wait') {
        await this.save(J.waitAtStep(active.current, next.index, now()));
        return;
      }
      await this.save(J.startStep(active.current, next.index, now()));
      const outcome = await this.runHandler(active, next.index);
      if (outcome.ok) {
        await this.save(J.completeStep(active.current, next.index, outcome.result, now()));
      } else if (active.cancelled) {
        continue; // saved as cancelled at the top of the loop
      } else if (this.stopping) {
        return; // interrupted, not failed: the step runs again after the restart
      } else {
        await this.save(J.failStep(active.current, next.index, outcome.error, now()));
        return;
      }
    }
  }

  private async runHandler(
    active: Active,
    index: number,
  ): Promise<{ ok: true; result: unknown } | { ok: false; error: JobError }> {
    const job = active.current;
    const jobType = this.opts.registry.get(job.type);
    const step = job.steps[index];
    const handler = step === undefined ? undefined : jobType?.handler(step.name);
    if (handler === undefined || step === undefined) {
      const message = `no handler for step ${step?.name ?? index} of job type ${job.type}`;
      return { ok: false, error: { code: 'SS_INTERNAL', message, details: {} } };
    }
    const results: Record<string, unknown> = {};
    for (const s of job.steps.slice(0, index)) results[s.name] = s.result;
    const ctx: StepContext<unknown> = {
      job,
      input: job.input,
      stepIndex: index,
      results,
      signal: active.controller.signal,
      log: this.opts.log.child({ job: job.id, step: step.name }),
      progress: (fraction) => {
        active.current = J.reportProgress(active.current, index, fraction, this.opts.clock.now());
        this.emit(active.current);
      },
    };
    try {
      return { ok: true, result: await handler(ctx) };
    } catch (e) {
      return { ok: false, error: toJobError(e) };
    }
  }
}
