import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../common/time/clock.ts';
import { silentLogger } from '../../../common/log/log.ts';
import type { FreezeOutcome } from '../vm/guest-agent.ts';
import type { JournalState, RecoveryPointRecord, RecoveryPointType } from '../journal/types.ts';
import { createCycleRunner } from './cycle-runner.ts';
import { openPointIndex } from './point-index.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/**
 * A runner on a fake clock whose sleep advances the clock, so the schedule plays out without
 * real time; it stops itself after `cuts` cuts.
 */
async function play(opts: {
  cuts: number;
  freeze: () => FreezeOutcome;
  state?: () => JournalState;
  maxSleeps?: number;
}) {
  const dir = mkdtempSync(join(tmpdir(), 'ss-cycles-'));
  dirs.push(dir);
  const clock = new FakeClock(0);
  const stop = new AbortController();
  const log: string[] = [];
  let sleeps = 0;
  const runner = createCycleRunner({
    journal: {
      get state() {
        return opts.state?.() ?? 'journaling';
      },
      async cut(c: {
        type: RecoveryPointType;
        freezeFailed?: string;
      }): Promise<RecoveryPointRecord> {
        log.push(`${clock.now() / 1000}s ${c.type}${c.freezeFailed ? ' (freeze failed)' : ''}`);
        if (log.length >= opts.cuts) stop.abort();
        return { id: `p${log.length}`, time: clock.now(), segment: log.length, ...c };
      },
    },
    guest: { freeze: async () => opts.freeze(), thaw: async () => undefined },
    points: openPointIndex(join(dir, 'points.jsonl'), silentLogger),
    schedule: { copyFrequencyMs: 30_000, appConsistentMs: 60_000 },
    freezeTimeoutMs: 10_000,
    clock,
    log: silentLogger,
    sleep: async (ms) => {
      if (++sleeps >= (opts.maxSleeps ?? 1000)) stop.abort();
      clock.advance(ms);
    },
  });
  await runner.run(stop.signal);
  return log;
}

describe('cycle runner', () => {
  it('cuts crash-consistent every copy frequency and app-consistent on its schedule', async () => {
    const log = await play({
      cuts: 4,
      freeze: () => ({ ok: true, id: '1', thawDeadline: Infinity }),
    });
    expect(log).toEqual([
      '30s crash-consistent',
      '60s app-consistent',
      '90s crash-consistent',
      '120s app-consistent',
    ]);
  });

  it('takes the cut crash-consistent when the guest does not freeze, and retries next interval', async () => {
    const log = await play({ cuts: 4, freeze: () => ({ ok: false, id: '1', error: 'timeout' }) });
    expect(log).toEqual([
      '30s crash-consistent',
      '60s crash-consistent (freeze failed)',
      '90s crash-consistent',
      '120s crash-consistent (freeze failed)',
    ]);
  });

  it('a freeze that outlives the guest self-thaw deadline is not app-consistent', async () => {
    const log = await play({ cuts: 2, freeze: () => ({ ok: true, id: '1', thawDeadline: 0 }) });
    expect(log[1]).toBe('60s crash-consistent (freeze failed)');
  });

  it('cuts nothing while the journal needs a resync', async () => {
    const log = await play({
      cuts: 1,
      freeze: () => ({ ok: true, id: '1', thawDeadline: Infinity }),
      state: () => 'resync-required',
      maxSleeps: 20,
    });
    expect(log).toEqual([]);
  });
});
