import { describe, expect, it } from 'vitest';
import { isSecondsiteError } from '../../../common/errors/errors.ts';
import {
  BandwidthScheduler,
  MB,
  describeSetting,
  limitAt,
  parseRate,
  parseWindow,
  type BandwidthSetting,
} from './bandwidth.ts';

/** A clock at local minute `minuteOf(ms)`: ms since a midnight, for the tests. */
const minuteOf = (ms: number): number => Math.floor(ms / 60_000) % 1440;
const at = (h: number, m = 0): number => (h * 60 + m) * 60_000;

/** Polls until the queue empties, advancing the injected time by each waitMs. */
function drain(s: BandwidthScheduler, start: number, until: number): number {
  let now = start;
  for (;;) {
    const { waitMs } = s.poll(now);
    if (waitMs === null || now + waitMs > until) return now;
    now += waitMs;
  }
}

describe('parsing', () => {
  it('reads windows and rates', () => {
    expect(parseWindow('08:00-18:00=20')).toEqual({
      start: 480,
      end: 1080,
      bytesPerSecond: 20 * MB,
    });
    expect(parseWindow('22:30-06:00=unlimited')).toEqual({
      start: 1350,
      end: 360,
      bytesPerSecond: null,
    });
    expect(parseRate('2.5', 'limit')).toBe(2_500_000);
  });

  it.each(['8-18=20', '08:00-08:00=5', '08:00-25:00=5', '08:00-18:00=0', '08:00-18:00=x'])(
    'refuses %j naming the field',
    (text) => {
      try {
        parseWindow(text, 'window');
        expect.unreachable();
      } catch (e) {
        expect(isSecondsiteError(e) && e.code === 'SS_BAD_INPUT').toBe(true);
        expect(String((e as Error).message)).toContain('window');
      }
    },
  );

  it('describes a setting', () => {
    const s: BandwidthSetting = {
      limit: null,
      windows: [parseWindow('08:00-18:00=20')],
      priorities: {},
    };
    expect(describeSetting(s)).toBe('unlimited, 08:00-18:00=20 MB/s');
  });
});

describe('limitAt', () => {
  const s: BandwidthSetting = {
    limit: 100 * MB,
    windows: [parseWindow('08:00-18:00=20'), parseWindow('22:00-02:00=unlimited')],
    priorities: {},
  };
  it('picks the window in force, the default outside them, wrapping past midnight', () => {
    expect(limitAt(s, 7 * 60 + 59)).toBe(100 * MB);
    expect(limitAt(s, 8 * 60)).toBe(20 * MB);
    expect(limitAt(s, 17 * 60 + 59)).toBe(20 * MB);
    expect(limitAt(s, 18 * 60)).toBe(100 * MB);
    expect(limitAt(s, 23 * 60)).toBeNull();
    expect(limitAt(s, 60)).toBeNull();
    expect(limitAt(s, 2 * 60)).toBe(100 * MB);
  });
});

describe('BandwidthScheduler', () => {
  it('grants 2 MB/s: 10 MB of 1 MB chunks take 4 s after the first second of burst', () => {
    const s = new BandwidthScheduler(
      { limit: 2 * MB, windows: [], priorities: {} },
      at(12),
      minuteOf,
    );
    for (let i = 0; i < 10; i++) s.request('vm1', MB, at(12));
    // The burst (2 MB) goes at once; the bucket may go one chunk into debt.
    expect(s.poll(at(12)).granted).toHaveLength(3);
    const end = drain(s, at(12), at(13));
    expect(s.waiting).toBe(0);
    expect(s.grantedByVm.get('vm1')).toBe(10 * MB);
    // 10 MB = 2 MB of burst + 1 MB of debt + 7 MB at 2 MB/s = 3.5 s.
    expect(end - at(12)).toBe(3500);
  });

  it('never grants more than rate × T + burst + one chunk over any span', () => {
    const s = new BandwidthScheduler(
      { limit: 2 * MB, windows: [], priorities: {} },
      at(9),
      minuteOf,
    );
    let now = at(9);
    let granted = 0;
    for (let step = 0; step < 200; step++) {
      s.request('a', 300_000, now);
      granted += s.poll(now).granted.reduce((n, g) => n + g.waiter.bytes, 0);
      now += 100;
      const elapsed = (now - at(9)) / 1000;
      expect(granted).toBeLessThanOrEqual(2 * MB * elapsed + 2 * MB + 300_000);
    }
    // And it keeps up with the rate: at least rate × T once the demand exceeds it.
    expect(granted).toBeGreaterThanOrEqual(2 * MB * 19);
  });

  it('accounts bytes per window: 20 MB/s in 08:00-18:00, unlimited outside', () => {
    const setting: BandwidthSetting = {
      limit: null,
      windows: [parseWindow('08:00-18:00=20')],
      priorities: {},
    };
    const s = new BandwidthScheduler(setting, at(7, 59), minuteOf);
    // Before 08:00: 100 MB goes at once.
    for (let i = 0; i < 100; i++) s.request('vm', MB, at(7, 59));
    expect(s.poll(at(7, 59)).granted).toHaveLength(100);
    // From 08:00: 10 s of demand beyond the cap.
    let now = at(8);
    for (let i = 0; i < 400; i++) s.request('vm', MB, now);
    const until = at(8) + 10_000;
    while (now <= until) {
      const { waitMs } = s.poll(now);
      if (waitMs === null) break;
      now += waitMs;
    }
    expect(s.grantedByWindow.get('default')).toBe(100 * MB);
    const inWindow = s.grantedByWindow.get('08:00-18:00=20 MB/s') ?? 0;
    // 10 s at 20 MB/s, plus at most one chunk of debt.
    expect(inWindow).toBeGreaterThanOrEqual(200 * MB);
    expect(inWindow).toBeLessThanOrEqual(201 * MB);
  });

  it('serves high before normal before low when the cap binds', () => {
    const s = new BandwidthScheduler(
      { limit: MB, windows: [], priorities: { db: 'high', batch: 'low' } },
      at(12),
      minuteOf,
    );
    s.poll(at(12));
    // Use up the burst, then queue in the "wrong" order.
    s.request('warm', 2 * MB, at(12));
    expect(s.poll(at(12)).granted).toHaveLength(1);
    s.request('batch', MB, at(12));
    s.request('web', MB, at(12));
    s.request('db', MB, at(12));
    const order: string[] = [];
    let now = at(12);
    for (let i = 0; i < 20 && s.waiting > 0; i++) {
      const { granted, waitMs } = s.poll(now);
      order.push(...granted.map((g) => g.waiter.vm));
      now += waitMs ?? 0;
    }
    expect(order).toEqual(['db', 'web', 'batch']);
  });

  it('unlimited grants everything at once and records no wait', () => {
    const s = new BandwidthScheduler({ limit: null, windows: [], priorities: {} }, 0, minuteOf);
    s.request('a', 50 * MB, 0);
    const r = s.poll(0);
    expect(r.granted.map((g) => g.waitedMs)).toEqual([0]);
    expect(r.waitMs).toBeNull();
  });

  it('a new setting applies from then on', () => {
    const s = new BandwidthScheduler({ limit: MB, windows: [], priorities: {} }, 0, minuteOf);
    s.request('a', 5 * MB, 0);
    s.poll(0);
    s.request('a', MB, 0);
    expect(s.poll(0).granted).toHaveLength(0);
    s.configure({ limit: null, windows: [], priorities: {} }, 10);
    expect(s.poll(10).granted).toHaveLength(1);
  });
});
