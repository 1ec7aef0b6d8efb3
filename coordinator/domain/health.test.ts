import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MONITORING_WINDOW_MS,
  TEST_FORGOTTEN_MS,
  itemHealth,
  missedCycles,
  rpoSeconds,
  staleThresholdMs,
  type HealthInput,
} from './health.ts';

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const S = 1000;
const MIN = 60 * S;

/** Successful 30 s cycles every `every` ms from `from` up to `to` (exclusive). */
function cycles(from: number, to: number, every = 30 * S): number[] {
  const out: number[] = [];
  for (let t = from + every; t < to; t += every) out.push(t);
  return out;
}

const input = (over: Partial<HealthInput>): HealthInput => ({
  vm: 'VMM-NewYork/VM1',
  state: 'protected',
  copyFrequency: '30s',
  now: T0 + 10 * MIN,
  protectedSince: T0,
  successfulCycles: cycles(T0, T0 + 10 * MIN + 1),
  latestPointAt: T0 + 10 * MIN,
  failure: null,
  ...over,
});

const codes = (i: HealthInput) => itemHealth(i).reasons.map((r) => r.code);

describe('item health (R21)', () => {
  it('is normal while every cycle succeeds', () => {
    expect(itemHealth(input({}))).toEqual({ health: 'normal', reasons: [] });
  });

  it('stays normal with exactly 20% of cycles missed, warns above 20%', () => {
    // 30 s cycles, 10 min 45 s after protection: 21 whole intervals, 20 expected (the one due
    // may be in flight); 20 succeeded.
    const now = T0 + 10 * MIN + 45 * S;
    const all = cycles(T0, T0 + 10 * MIN + 1);
    const at = (successfulCycles: number[]) => input({ now, successfulCycles });
    expect(missedCycles(at(all))).toEqual({ expected: 20, missed: 0 });
    const missing4 = all.filter((_, i) => ![2, 4, 6, 8].includes(i));
    expect(missedCycles(at(missing4))).toEqual({ expected: 20, missed: 4 });
    expect(itemHealth(at(missing4)).health).toBe('normal');
    const missing5 = all.filter((_, i) => ![2, 4, 6, 8, 10].includes(i));
    const r = itemHealth(at(missing5));
    expect(r.health).toBe('warning');
    expect(r.reasons).toHaveLength(1);
    expect(r.reasons[0]).toMatchObject({ code: 'missed-cycles', severity: 'warning' });
    expect(r.reasons[0]!.message).toContain('5 of 20');
    expect(r.reasons[0]!.action).toMatch(/check the hosts/);
  });

  it('does not count the cycle now due as missed', () => {
    const i = input({
      now: T0 + 65 * S,
      successfulCycles: [T0 + 30 * S],
      latestPointAt: T0 + 30 * S,
    });
    expect(missedCycles(i)).toEqual({ expected: 1, missed: 0 });
    expect(itemHealth(i).health).toBe('normal');
  });

  it('counts only the monitoring window', () => {
    const now = T0 + 3 * 3_600_000;
    // Protected for 3 h; the first 2 h had no successful cycle, the last hour all of them.
    const i = input({
      now,
      successfulCycles: cycles(now - DEFAULT_MONITORING_WINDOW_MS, now + 1),
      latestPointAt: now,
    });
    expect(itemHealth(i).health).toBe('normal');
    expect(itemHealth({ ...i, windowMs: 2 * 3_600_000 }).health).toBe('warning');
  });

  it.each([
    ['30s', 2 * MIN],
    ['5m', 11 * MIN],
    ['15m', 31 * MIN],
  ] as const)('warns when the newest point is older than the %s threshold', (f, limit) => {
    expect(staleThresholdMs(f)).toBe(limit);
    const now = T0 + 10 * 3_600_000;
    // Cycles all succeed (nothing missed) but the newest point is just past the threshold.
    const ok = input({
      copyFrequency: f,
      now,
      protectedSince: now - limit,
      successfulCycles: [],
      latestPointAt: now - limit,
    });
    expect(codes(ok)).not.toContain('stale-point');
    expect(codes({ ...ok, latestPointAt: now - limit - 1 })).toContain('stale-point');
  });

  it('judges point age from protection start when no point exists yet', () => {
    expect(codes(input({ latestPointAt: null, successfulCycles: [] }))).toContain('stale-point');
  });

  it('is critical when a resync is required, saying to resync', () => {
    const r = itemHealth(input({ state: 'resync-required' }));
    expect(r.health).toBe('critical');
    expect(r.reasons).toHaveLength(1);
    expect(r.reasons[0]!.action).toContain(
      'secondsite replication resync --vault VAULT VMM-NewYork/VM1',
    );
  });

  it('is critical at once for a failure that is not retried', () => {
    const r = itemHealth(
      input({
        failure: { since: T0 + 10 * MIN, message: 'no common protocol version', retrying: false },
      }),
    );
    expect(r.health).toBe('critical');
    expect(r.reasons[0]).toMatchObject({ code: 'replication-stopped' });
    expect(r.reasons[0]!.message).toContain('stopped: no common protocol version');
  });

  it('goes warning, then critical, while a target host stays unreachable, then back to normal', () => {
    const lastOk = T0 + 10 * MIN;
    const ok = cycles(T0, lastOk + 1);
    const down = (now: number): HealthInput =>
      input({
        now,
        successfulCycles: ok,
        latestPointAt: lastOk,
        failure: { since: lastOk + 30 * S, message: 'ch-hv1 unreachable', retrying: true },
      });
    expect(itemHealth(down(lastOk + 60 * S)).health).toBe('normal');
    const warn = itemHealth(down(lastOk + 2 * MIN + 30 * S));
    expect(warn.health).toBe('warning');
    expect(warn.reasons.map((r) => r.code)).toEqual(['stale-point']);
    const crit = itemHealth(down(lastOk + 30 * S + 3 * MIN));
    expect(crit.health).toBe('critical');
    expect(crit.reasons.map((r) => r.code)).toEqual([
      'replication-stopped',
      'missed-cycles',
      'stale-point',
    ]);
    expect(crit.reasons[0]!.message).toContain('failed for 3 min: ch-hv1 unreachable');
    // The host is back: the piled-up changes arrive in one cycle, then cycles run normally.
    // Missed cycles weigh on health until the window has enough successes again.
    const back = lastOk + 4 * MIN;
    const after = (now: number) =>
      input({
        now,
        successfulCycles: [...ok, ...cycles(back - 30 * S, now + 1)],
        latestPointAt: now,
        failure: null,
      });
    expect(itemHealth(after(back + MIN)).health).toBe('warning');
    expect(itemHealth(after(back + 20 * MIN))).toEqual({ health: 'normal', reasons: [] });
  });

  it('warns while paused and does not judge cycles then', () => {
    const r = itemHealth(input({ state: 'paused', successfulCycles: [], latestPointAt: T0 }));
    expect(r.reasons.map((x) => x.code)).toEqual(['paused']);
    expect(r.reasons[0]!.action).toBe(
      'run: secondsite replication resume --vault VAULT VMM-NewYork/VM1',
    );
  });

  it.each([
    'enabling',
    'initial-replication',
    'resynchronizing',
    'failed-over',
    'committed',
    'disabled',
  ] as const)('does not judge cycles while %s', (state) => {
    expect(itemHealth(input({ state, successfulCycles: [], latestPointAt: null })).health).toBe(
      'normal',
    );
  });

  it('warns about a test failover left running', () => {
    const now = T0 + 10 * MIN;
    expect(codes(input({ testFailoverSince: now - TEST_FORGOTTEN_MS }))).toEqual([]);
    const r = itemHealth(input({ testFailoverSince: now - TEST_FORGOTTEN_MS - 1 }));
    expect(r.reasons[0]).toMatchObject({ code: 'test-failover-left', severity: 'warning' });
    expect(r.reasons[0]!.action).toContain(
      'failover cleanup-test --vault VAULT --vm VMM-NewYork/VM1',
    );
  });

  it('returns a frozen report', () => {
    const r = itemHealth(input({ state: 'paused' }));
    expect(Object.isFrozen(r) && Object.isFrozen(r.reasons) && Object.isFrozen(r.reasons[0])).toBe(
      true,
    );
  });
});

describe('rpoSeconds', () => {
  it('is the age of the newest point in whole seconds, null without one', () => {
    expect(rpoSeconds(T0, T0 + 42_900)).toBe(42);
    expect(rpoSeconds(T0 + 5, T0)).toBe(0);
    expect(rpoSeconds(null, T0)).toBeNull();
  });
});
