import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { SecondsiteError } from '../../common/errors/errors.ts';
import { silentLogger } from '../../common/log/log.ts';
import { FakeClock } from '../../common/time/clock.ts';
import { waitFor } from '../../test/helpers/wait-for.ts';
import type { Job } from '../domain/job.ts';
import { faultyStore } from '../store/faulty-store.ts';
import { openMemoryStore } from '../store/level-store.ts';
import { keys, type Store } from '../store/store.ts';
import { JobRunner } from './job-runner.ts';
import { JobTypeRegistry, type JobType, type StepHandler } from './job-types.ts';

/** A job type whose steps the test controls: each step's handler is a test-supplied function. */
function scriptedType(
  handlers: Record<string, StepHandler<{ n: number }>>,
): JobType<{ n: number }> {
  return {
    type: 'scripted',
    input: z.object({ n: z.number() }).strict(),
    plan: () => [
      { name: 'one' },
      { name: 'confirm', kind: 'manual', instruction: 'look outside' },
      { name: 'two' },
    ],
    handler: (name) => handlers[name],
  };
}

function linearType(handlers: Record<string, StepHandler<{ n: number }>>): JobType<{ n: number }> {
  return {
    ...scriptedType(handlers),
    type: 'linear',
    plan: () => [{ name: 'one' }, { name: 'two' }],
  };
}

async function setup(store?: Store, handlers: Record<string, StepHandler<{ n: number }>> = {}) {
  const s = store ?? (await openMemoryStore());
  await s.put(keys.vault('v1'), { id: 'v1', name: 'prod', createdAt: '' });
  const registry = new JobTypeRegistry()
    .register(scriptedType(handlers))
    .register(linearType(handlers));
  const runner = new JobRunner({ store: s, registry, clock: new FakeClock(), log: silentLogger });
  const stop = new AbortController();
  const running = runner.run(stop.signal);
  return {
    store: s,
    runner,
    stop: async () => (stop.abort(), await runner.shutdown(), await running),
  };
}

const settled = (runner: JobRunner, id: string, state: Job['state']) =>
  waitFor(
    async () => {
      const j = await runner.get(id);
      return j.state === state ? j : undefined;
    },
    { what: `job ${state}` },
  );

/** A promise the test resolves when it wants a step to finish. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

describe('job runner', () => {
  it('runs steps in order, saves each result, waits at a manual step and resumes', async () => {
    const order: string[] = [];
    const t = await setup(undefined, {
      one: async (ctx) => (order.push('one'), ctx.progress(0.5), { x: ctx.input.n }),
      two: async (ctx) => (order.push('two'), { sawOne: ctx.results['one'] }),
    });
    const updates: Job[] = [];
    t.runner.onUpdate((j) => updates.push(j));
    const job = await t.runner.submit({ vaultId: 'v1', type: 'scripted', input: { n: 7 } });
    const waiting = await settled(t.runner, job.id, 'waiting');
    expect(waiting.steps.map((s) => s.state)).toEqual(['succeeded', 'waiting', 'pending']);
    expect(order).toEqual(['one']);
    await t.runner.resume(job.id);
    const done = await settled(t.runner, job.id, 'succeeded');
    expect(done.steps.map((s) => s.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(done.steps[2]!.result).toEqual({ sawOne: { x: 7 } });
    expect(await t.store.get(keys.job('v1', job.id))).toEqual(done);
    expect(updates.some((u) => u.steps[0]!.progress === 0.5)).toBe(true);
    await expect(t.runner.resume(job.id)).rejects.toMatchObject({ code: 'SS_CONFLICT' });
    await t.stop();
  });

  it('lets only one of two simultaneous resumes through', async () => {
    const t = await setup(undefined, { one: async () => 1, two: async () => 2 });
    const job = await t.runner.submit({ vaultId: 'v1', type: 'scripted', input: { n: 1 } });
    await settled(t.runner, job.id, 'waiting');
    const outcomes = await Promise.allSettled([t.runner.resume(job.id), t.runner.resume(job.id)]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    await settled(t.runner, job.id, 'succeeded');
    await t.stop();
  });

  it('fails the job at a failing step and runs nothing after it', async () => {
    let twoRan = false;
    const t = await setup(undefined, {
      one: async () => {
        throw new SecondsiteError('SS_UNAVAILABLE', 'provider offline');
      },
      two: async () => void (twoRan = true),
    });
    const job = await t.runner.submit({ vaultId: 'v1', type: 'linear', input: { n: 1 } });
    const failed = await settled(t.runner, job.id, 'failed');
    expect(failed.error).toMatchObject({ code: 'SS_UNAVAILABLE', message: 'provider offline' });
    expect(failed.steps.map((s) => s.state)).toEqual(['failed', 'pending']);
    expect(twoRan).toBe(false);
    await t.stop();
  });

  it('refuses bad input naming the field, and saves nothing', async () => {
    const t = await setup();
    await expect(
      t.runner.submit({ vaultId: 'v1', type: 'linear', input: { n: 'x' } }),
    ).rejects.toMatchObject({ code: 'SS_BAD_INPUT', details: { field: 'input.n' } });
    await expect(t.runner.submit({ vaultId: 'v1', type: 'nope', input: {} })).rejects.toMatchObject(
      { code: 'SS_BAD_INPUT', details: { field: 'type' } },
    );
    expect(await t.runner.list('v1')).toEqual([]);
    await t.stop();
  });

  it('cancels a running step, a waiting job, and refuses to cancel a finished one', async () => {
    const t = await setup(undefined, {
      one: (ctx) =>
        new Promise((_, reject) =>
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
        ),
    });
    const job = await t.runner.submit({ vaultId: 'v1', type: 'linear', input: { n: 1 } });
    await waitFor(async () => (await t.runner.get(job.id)).steps[0]!.state === 'running');
    const cancelled = await t.runner.cancel(job.id);
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.error?.code).toBe('SS_CANCELLED');
    expect(cancelled.steps.map((s) => s.state)).toEqual(['cancelled', 'pending']);
    await expect(t.runner.cancel(job.id)).rejects.toMatchObject({ code: 'SS_CONFLICT' });
    await t.stop();

    const u = await setup(undefined, { one: async () => 1 });
    const waiting = await u.runner.submit({ vaultId: 'v1', type: 'scripted', input: { n: 1 } });
    await settled(u.runner, waiting.id, 'waiting');
    expect((await u.runner.cancel(waiting.id)).steps.map((s) => s.state)).toEqual([
      'succeeded',
      'cancelled',
      'pending',
    ]);
    await u.stop();
  });

  it('resumes at the first unfinished step after a stop mid-step, with the store intact', async () => {
    const store = await openMemoryStore();
    const runs = { one: 0, two: 0 };
    const blocked = gate();
    const first = await setup(store, {
      one: async () => (runs.one++, 'one-done'),
      // The first process "crashes" inside step two: it never completes there.
      two: (ctx) => (
        runs.two++,
        blocked.open(),
        new Promise((_, rej) =>
          ctx.signal.addEventListener('abort', () => rej(new Error('killed'))),
        )
      ),
    });
    const job = await first.runner.submit({ vaultId: 'v1', type: 'linear', input: { n: 1 } });
    await blocked.opened;
    await first.stop();
    const saved = await store.get<Job>(keys.job('v1', job.id));
    expect(saved?.state).toBe('running');
    expect(saved?.steps.map((s) => s.state)).toEqual(['succeeded', 'running']);

    const second = await setup(store, {
      one: async () => (runs.one++, 'again?'),
      two: async (ctx) => (runs.two++, { after: ctx.results['one'] }),
    });
    const done = await settled(second.runner, job.id, 'succeeded');
    expect(runs).toEqual({ one: 1, two: 2 });
    expect(done.steps[1]!.result).toEqual({ after: 'one-done' });
    await second.stop();
  });

  it('acknowledges nothing it could not save, and resumes from the last saved step', async () => {
    const store = faultyStore(await openMemoryStore());
    store.setFault((op) => op === 'batch');
    const t = await setup(store, { one: async () => 1, two: async () => 2 });
    await expect(
      t.runner.submit({ vaultId: 'v1', type: 'linear', input: { n: 1 } }),
    ).rejects.toMatchObject({ code: 'SS_IO' });
    store.setFault(undefined);
    expect(await t.runner.list('v1')).toEqual([]);

    // Once step one's result is saved, the next save (step two's start) fails: the job stops
    // in memory and its stored state stays "step one done".
    let stepOneSaved = false;
    t.runner.onUpdate((j) => {
      if (j.steps[0]!.state === 'succeeded') stepOneSaved = true;
    });
    store.setFault((op, key) => op === 'put' && key.includes('/job/') && stepOneSaved);
    const job = await t.runner.submit({ vaultId: 'v1', type: 'linear', input: { n: 1 } });
    await waitFor(() => store.injected > 1, { what: 'the injected failure' });
    await t.stop();
    store.setFault(undefined);
    const saved = await store.get<Job>(keys.job('v1', job.id));
    expect(saved?.steps.map((s) => s.state)).toEqual(['succeeded', 'pending']);

    const again = await setup(store, { one: async () => 1, two: async () => 2 });
    await settled(again.runner, job.id, 'succeeded');
    await again.stop();
  });
});
