/**
 * The `plan.run` job on the real JobRunner (memory-level store) with real scripts: groups in
 * order with the VMs of a group in parallel, a manual action parking the job until resume, a
 * failing script failing the job, and a new runner on the same store resuming a run.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SecondsiteError } from '../../common/errors/errors.ts';
import { silentLogger } from '../../common/log/log.ts';
import { systemClock } from '../../common/time/clock.ts';
import type { Job, Step } from '../../coordinator/domain/job.ts';
import {
  addAction,
  addVms,
  newPlan,
  type RecoveryPlan,
} from '../../coordinator/domain/recovery-plan.ts';
import { JobRunner } from '../../coordinator/jobs/job-runner.ts';
import { JobTypeRegistry } from '../../coordinator/jobs/job-types.ts';
import {
  PLAN_JOB,
  planJobType,
  planRunInput,
  type PlanJobDeps,
} from '../../coordinator/plans/plan-job.ts';
import { openMemoryStore } from '../../coordinator/store/level-store.ts';
import { keys, type Store } from '../../coordinator/store/store.ts';
import { writeScript } from '../helpers/plan-scripts.ts';
import { waitFor } from '../helpers/wait-for.ts';

const ITEMS = ['db1', 'db2', 'app1', 'web1'].map((vm) => ({
  vm,
  sourceServer: 'NY',
  sourceCloud: 'Gold1',
  targetServer: 'CH',
  targetCloud: 'Gold2',
}));

let dir: string;
let trace: string;
const stops: Array<() => Promise<void>> = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ss-plan-job-'));
  trace = join(dir, 'trace.txt');
});
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
  rmSync(dir, { recursive: true, force: true });
});

const traced = (): string[] =>
  readFileSync(trace, 'utf8')
    .split('\n')
    .filter((l) => l !== '');

/** db1+db2 (a script before), app1 (a manual action after), web1 (a script after). */
function shopPlan(beforeScript: string): RecoveryPlan {
  const after3 = writeScript(
    dir,
    'after3.sh',
    `echo "script after:3 $SECONDSITE_FAILOVER_TYPE" >> '${trace}'`,
  );
  let p = newPlan({ name: 'Shop', sourceCloud: 'NY/Gold1', targetCloud: 'CH/Gold2' });
  p = addVms(p, 1, ['db1', 'db2'], ITEMS);
  p = addAction(p, { group: 1, side: 'before', script: beforeScript });
  p = addVms(p, 2, ['app1'], ITEMS);
  p = addAction(p, { group: 2, side: 'after', manual: 'check the payment gateway' });
  p = addVms(p, 3, ['web1'], ITEMS);
  return addAction(p, { group: 3, side: 'after', script: after3 });
}

const okScript = (): string =>
  writeScript(dir, 'before1.sh', `echo "script before:1 $SECONDSITE_PLAN" >> '${trace}'`);

/**
 * A runVm that traces start and end, and lets a VM finish only once every VM of its group has
 * started: run one after the other, a group would never get past its first VM.
 */
function parallelVms(plan: RecoveryPlan): PlanJobDeps['runVm'] {
  const started = new Set<string>();
  return async (run, signal) => {
    appendFileSync(trace, `start ${run.vm} ${run.operation} ${run.recoveryPoint ?? '-'}\n`);
    started.add(run.vm);
    const group = plan.groups.find((g) => g.vms.includes(run.vm))!;
    await waitFor(() => group.vms.every((vm) => started.has(vm)) || signal.aborted, {
      timeoutMs: 10_000,
      intervalMs: 10,
      what: `every VM of group ${group.group} to start`,
    });
    signal.throwIfAborted();
    appendFileSync(trace, `end ${run.vm}\n`);
    return { running: run.vm };
  };
}

async function runner(store: Store, runVm: PlanJobDeps['runVm']) {
  const registry = new JobTypeRegistry().register(planJobType({ runVm }));
  const jobs = new JobRunner({ store, registry, clock: systemClock, log: silentLogger });
  const stop = new AbortController();
  const running = jobs.run(stop.signal);
  let stopped = false;
  const halt = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    stop.abort();
    await jobs.shutdown();
    await running;
  };
  stops.push(halt);
  return { jobs, halt };
}

async function vaultStore(): Promise<Store> {
  const store = await openMemoryStore();
  await store.put(keys.vault('v1'), { id: 'v1', name: 'prod', createdAt: '' });
  return store;
}

const inState = (jobs: JobRunner, id: string, state: Job['state']) =>
  waitFor(
    async () => {
      const j = await jobs.get(id);
      return j.state === state ? j : undefined;
    },
    { what: `job ${state}`, timeoutMs: 20_000 },
  );

const step = (job: Job, name: string): Step => job.steps.find((s) => s.name === name)!;

describe('plan.run job', () => {
  it('runs groups in order, VMs of a group together, and waits at the manual action', async () => {
    const plan = shopPlan(okScript());
    const { jobs } = await runner(await vaultStore(), parallelVms(plan));
    const submitted = await jobs.submit({
      vaultId: 'v1',
      type: PLAN_JOB,
      input: planRunInput(plan, 'test', 'latest-app-consistent'),
    });

    const waiting = await inState(jobs, submitted.id, 'waiting');
    expect(waiting.steps.map((s) => [s.name, s.state])).toEqual([
      ['before:1:1', 'succeeded'],
      ['group:1', 'succeeded'],
      ['group:2', 'succeeded'],
      ['after:2:1', 'waiting'],
      ['group:3', 'pending'],
      ['after:3:1', 'pending'],
    ]);
    expect(step(waiting, 'after:2:1').instruction).toBe('after group 2: check the payment gateway');
    expect(traced().some((l) => l.includes('web1'))).toBe(false);
    expect(step(waiting, 'group:1').result).toEqual({
      group: 1,
      vms: { db1: { running: 'db1' }, db2: { running: 'db2' } },
    });
    expect(step(waiting, 'before:1:1').result).toMatchObject({ exitCode: 0, output: '' });

    await jobs.resume(submitted.id);
    const done = await inState(jobs, submitted.id, 'succeeded');
    const lines = traced();
    expect(lines.slice(0, 1)).toEqual(['script before:1 Shop']);
    // Group 1's two VMs both start before either ends; each group ends before the next starts.
    expect(lines.slice(1, 3).sort()).toEqual([
      'start db1 test latest-app-consistent',
      'start db2 test latest-app-consistent',
    ]);
    expect(lines.slice(3, 5).sort()).toEqual(['end db1', 'end db2']);
    expect(lines.slice(5)).toEqual([
      'start app1 test latest-app-consistent',
      'end app1',
      'start web1 test latest-app-consistent',
      'end web1',
      'script after:3 test',
    ]);
    // The saved step times say the same: each step starts after the previous one ended.
    for (let i = 1; i < done.steps.length; i++) {
      const prev = done.steps[i - 1]!;
      const cur = done.steps[i]!;
      expect(cur.startedAt! >= prev.endedAt!, `${cur.name} after ${prev.name}`).toBe(true);
    }
  });

  it('fails the job at a failing script, before any VM is touched', async () => {
    const failing = writeScript(dir, 'fail.sh', 'echo "cannot quiesce the database" >&2\nexit 3');
    const plan = shopPlan(failing);
    let vmRuns = 0;
    const { jobs } = await runner(await vaultStore(), async () => void vmRuns++);
    const job = await jobs.submit({
      vaultId: 'v1',
      type: PLAN_JOB,
      input: planRunInput(plan, 'planned'),
    });
    const failed = await inState(jobs, job.id, 'failed');
    expect(failed.error).toMatchObject({
      code: 'SS_SCRIPT_FAILED',
      details: { exitCode: 3, output: 'cannot quiesce the database\n', script: failing },
    });
    expect(failed.steps.map((s) => s.state)).toEqual([
      'failed',
      'pending',
      'pending',
      'pending',
      'pending',
      'pending',
    ]);
    expect(vmRuns).toBe(0);
  });

  it('fails a group naming the VM that failed, after the others finished', async () => {
    const plan = shopPlan(okScript());
    const finished: string[] = [];
    const { jobs } = await runner(await vaultStore(), async (run) => {
      if (run.vm === 'db2') throw new SecondsiteError('SS_UNAVAILABLE', 'target host offline');
      await new Promise((r) => setTimeout(r, 50));
      finished.push(run.vm);
    });
    const job = await jobs.submit({
      vaultId: 'v1',
      type: PLAN_JOB,
      input: planRunInput(plan, 'unplanned', 'latest'),
    });
    const failed = await inState(jobs, job.id, 'failed');
    expect(failed.error).toMatchObject({
      code: 'SS_UNAVAILABLE',
      details: {
        group: 1,
        failed: [{ vm: 'db2', code: 'SS_UNAVAILABLE', message: 'target host offline' }],
        succeeded: ['db1'],
      },
    });
    expect(finished).toEqual(['db1']);
    expect(step(failed, 'group:2').state).toBe('pending');
  });

  it('resumes a run after a coordinator restart (a new runner on the same store)', async () => {
    const store = await vaultStore();
    const plan = shopPlan(okScript());
    const first = await runner(store, async (run, signal) => {
      appendFileSync(trace, `start ${run.vm}\n`);
      if (run.vm !== 'app1') return 'ok';
      // The first coordinator "dies" while group 2 is in progress.
      return new Promise((_, reject) =>
        signal.addEventListener('abort', () => reject(new Error('killed'))),
      );
    });
    const job = await first.jobs.submit({
      vaultId: 'v1',
      type: PLAN_JOB,
      input: planRunInput(plan, 'planned'),
    });
    await waitFor(() => traced().includes('start app1'), { what: 'group 2 to start' });
    await first.halt();
    const saved = await store.get<Job>(keys.job('v1', job.id));
    expect(saved?.state).toBe('running');
    expect(saved?.steps.map((s) => s.state).slice(0, 3)).toEqual([
      'succeeded',
      'succeeded',
      'running',
    ]);

    const second = await runner(store, parallelVms(plan));
    await inState(second.jobs, job.id, 'waiting');
    await second.jobs.resume(job.id);
    await inState(second.jobs, job.id, 'succeeded');
    // Group 1 and its script ran once; group 2 ran again (its step was in progress).
    expect(traced()).toEqual([
      'script before:1 Shop',
      'start db1',
      'start db2',
      'start app1',
      'start app1 planned -',
      'end app1',
      'start web1 planned -',
      'end web1',
      'script after:3 planned',
    ]);
  });

  it('refuses a plan without VMs at submit, saving no job', async () => {
    const { jobs } = await runner(await vaultStore(), async () => undefined);
    const empty = newPlan({ name: 'Empty', sourceCloud: 'NY/Gold1', targetCloud: 'CH/Gold2' });
    await expect(
      jobs.submit({ vaultId: 'v1', type: PLAN_JOB, input: planRunInput(empty, 'test') }),
    ).rejects.toMatchObject({ code: 'SS_CONFLICT' });
    await expect(
      jobs.submit({
        vaultId: 'v1',
        type: PLAN_JOB,
        input: { ...planRunInput(empty, 'test'), operation: 'explode' },
      }),
    ).rejects.toMatchObject({ code: 'SS_BAD_INPUT', details: { field: 'input.operation' } });
    expect(await jobs.list('v1')).toEqual([]);
  });
});
