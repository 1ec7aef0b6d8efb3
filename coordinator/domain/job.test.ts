import { describe, expect, it } from 'vitest';
import * as J from './job.ts';

const T0 = Date.UTC(2026, 0, 1);
const plan = [
  { name: 'a' },
  { name: 'ok?', kind: 'manual' as const, instruction: 'check' },
  { name: 'b' },
];
const fresh = (): J.Job =>
  J.newJob({ id: 'j-1', vaultId: 'v-1', type: 't', input: {}, plan, now: T0 });

describe('job state machine', () => {
  it('plans pending steps and a running job', () => {
    const job = fresh();
    expect(job.state).toBe('running');
    expect(job.steps.map((s) => [s.name, s.kind, s.state])).toEqual([
      ['a', 'auto', 'pending'],
      ['ok?', 'manual', 'pending'],
      ['b', 'auto', 'pending'],
    ]);
    expect(J.nextAction(job)).toEqual({ action: 'run', index: 0 });
  });

  it('walks run → wait → confirm → run → finish', () => {
    let job = J.startStep(fresh(), 0, T0 + 1);
    job = J.completeStep(job, 0, { x: 1 }, T0 + 2);
    expect(J.nextAction(job)).toEqual({ action: 'wait', index: 1 });
    job = J.waitAtStep(job, 1, T0 + 3);
    expect(job.state).toBe('waiting');
    job = J.confirmWaitingStep(job, T0 + 4);
    expect(job.state).toBe('running');
    expect(J.nextAction(job)).toEqual({ action: 'run', index: 2 });
    job = J.completeStep(J.startStep(job, 2, T0 + 5), 2, undefined, T0 + 6);
    expect(J.nextAction(job)).toEqual({ action: 'finish' });
    job = J.succeedJob(job, T0 + 7);
    expect(job.state).toBe('succeeded');
    expect(job.steps[0]!.result).toEqual({ x: 1 });
    expect(job.steps[2]).not.toHaveProperty('result');
  });

  it('a step re-run after a restart keeps its first start time', () => {
    const started = J.startStep(fresh(), 0, T0 + 1);
    const again = J.startStep(started, 0, T0 + 99);
    expect(again.steps[0]!.startedAt).toBe(new Date(T0 + 1).toISOString());
    expect(J.firstUnfinishedStep(again)).toBe(0);
  });

  it('a failed step fails the job with its error', () => {
    const err = { code: 'SS_UNAVAILABLE' as const, message: 'down', details: {} };
    const job = J.failStep(J.startStep(fresh(), 0, T0), 0, err, T0 + 1);
    expect(job.state).toBe('failed');
    expect(job.error).toEqual(err);
    expect(job.steps[0]!.error).toEqual(err);
  });

  it('cancel marks the step in progress and the job', () => {
    const job = J.cancelJob(J.startStep(fresh(), 0, T0), T0 + 1);
    expect(job.state).toBe('cancelled');
    expect(job.error?.code).toBe('SS_CANCELLED');
    expect(job.steps.map((s) => s.state)).toEqual(['cancelled', 'pending', 'pending']);
  });

  it('confirming a job that does not wait is refused; progress is clamped', () => {
    expect(() => J.confirmWaitingStep(fresh(), T0)).toThrow(/not waiting/);
    expect(J.reportProgress(fresh(), 0, 7, T0).steps[0]!.progress).toBe(1);
    expect(() =>
      J.newJob({ id: 'x', vaultId: 'v', type: 't', input: {}, plan: [], now: T0 }),
    ).toThrow();
  });
});
