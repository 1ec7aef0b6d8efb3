import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../../common/time/clock.ts';
import { decideCut, type CutHistory, type CutSchedule } from './schedule.ts';

const S30 = 30_000;
const H1 = 3_600_000;

/** Drives the schedule the way the runner does: cut whatever is due, record it, advance. */
function simulate(schedule: CutSchedule, clock: FakeClock, untilMs: number, stepMs: number) {
  let history: CutHistory = { since: clock.now() };
  const cuts: Array<{ at: number; kind: string }> = [];
  const end = clock.now() + untilMs;
  while (clock.now() <= end) {
    const d = decideCut(schedule, history, clock.now());
    if (d.due !== 'none') {
      cuts.push({ at: clock.now() - history.since, kind: d.due });
      history = {
        ...history,
        lastCutAt: clock.now(),
        ...(d.due === 'app-consistent' ? { lastAppAttemptAt: clock.now() } : {}),
      };
    }
    clock.advance(stepMs);
  }
  return cuts;
}

describe('decideCut', () => {
  it('is not due before one copy frequency has passed since protection', () => {
    const clock = new FakeClock();
    const d = decideCut(
      { copyFrequencyMs: S30, appConsistentMs: 0 },
      { since: clock.now() },
      clock.now() + 29_999,
    );
    expect(d).toEqual({ due: 'none', at: clock.now() + S30 });
  });

  it('cuts crash-consistent every copy frequency when app-consistent is off', () => {
    const cuts = simulate(
      { copyFrequencyMs: S30, appConsistentMs: 0 },
      new FakeClock(),
      120_000,
      1000,
    );
    expect(cuts).toEqual([
      { at: 30_000, kind: 'crash-consistent' },
      { at: 60_000, kind: 'crash-consistent' },
      { at: 90_000, kind: 'crash-consistent' },
      { at: 120_000, kind: 'crash-consistent' },
    ]);
  });

  it('makes one cycle per app-consistent interval app-consistent', () => {
    const cuts = simulate(
      { copyFrequencyMs: 300_000, appConsistentMs: H1 },
      new FakeClock(),
      2 * H1,
      1000,
    );
    expect(cuts).toHaveLength(24);
    expect(cuts.filter((c) => c.kind === 'app-consistent').map((c) => c.at)).toEqual([H1, 2 * H1]);
  });

  it('does not catch up missed cycles after downtime', () => {
    const since = 0;
    const d = decideCut(
      { copyFrequencyMs: S30, appConsistentMs: 0 },
      { since, lastCutAt: 0 },
      10 * S30 + 5,
    );
    expect(d.due).toBe('crash-consistent');
    const next = decideCut(
      { copyFrequencyMs: S30, appConsistentMs: 0 },
      { since, lastCutAt: 10 * S30 + 5 },
      10 * S30 + 6,
    );
    expect(next).toEqual({ due: 'none', at: 11 * S30 + 5 });
  });

  it('counts a failed freeze as an attempt so the next cycles stay crash-consistent', () => {
    const schedule = { copyFrequencyMs: S30, appConsistentMs: H1 };
    const history = { since: 0, lastCutAt: H1, lastAppAttemptAt: H1 };
    expect(decideCut(schedule, history, H1 + S30).due).toBe('crash-consistent');
    expect(decideCut(schedule, { ...history, lastCutAt: 2 * H1 - 1 }, 2 * H1 + S30).due).toBe(
      'app-consistent',
    );
  });
});
