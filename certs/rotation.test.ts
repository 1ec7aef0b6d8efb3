import { describe, expect, it } from 'vitest';
import { FakeClock } from '../common/time/clock.ts';
import {
  caRotationAction,
  caRotationPlan,
  caRotationState,
  nextRenewalCheck,
  renewalDue,
} from './rotation.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);

describe('renewalDue', () => {
  it('is due from half-life on', () => {
    const clock = new FakeClock(T0);
    const notAfter = T0 + 24 * HOUR;
    expect(renewalDue(T0, notAfter, clock.now())).toBe(false);
    clock.advance(12 * HOUR - 1);
    expect(renewalDue(T0, notAfter, clock.now())).toBe(false);
    clock.advance(1);
    expect(renewalDue(T0, notAfter, clock.now())).toBe(true);
    clock.advance(24 * HOUR);
    expect(renewalDue(T0, notAfter, clock.now())).toBe(true);
  });
});

describe('CA rotation', () => {
  // A 60-hour CA: successor prepared at 30 h, activated at 50 h, old CA trusted until 60 h.
  const first = { notBefore: T0, notAfter: T0 + 60 * HOUR, activatesAt: T0 };

  it('plans prepare at half-life and activate at 5/6', () => {
    expect(caRotationPlan(first)).toEqual({
      prepareNextAt: T0 + 30 * HOUR,
      activateNextAt: T0 + 50 * HOUR,
    });
  });

  it('moves a generation through prepared, active, old, expired', () => {
    const plan = caRotationPlan(first);
    const second = {
      notBefore: plan.prepareNextAt,
      notAfter: plan.prepareNextAt + 60 * HOUR,
      activatesAt: plan.activateNextAt,
    };
    const at = (h: number): [string, string] => [
      caRotationState(first, T0 + h * HOUR),
      caRotationState(second, T0 + h * HOUR),
    ];
    expect(at(0)).toEqual(['active', 'prepared']);
    expect(at(30)).toEqual(['active', 'prepared']);
    expect(at(49.9)).toEqual(['active', 'prepared']);
    expect(at(50)).toEqual(['old', 'active']);
    expect(at(59.9)).toEqual(['old', 'active']);
    expect(at(60)).toEqual(['expired', 'active']);
    expect(at(30 + 50)).toEqual(['expired', 'old']);
    expect(at(90)).toEqual(['expired', 'expired']);
  });

  it('exactly one generation is active at any time', () => {
    const plan = caRotationPlan(first);
    const second = {
      notBefore: plan.prepareNextAt,
      notAfter: plan.prepareNextAt + 60 * HOUR,
      activatesAt: plan.activateNextAt,
    };
    for (let h = 0; h < 80; h += 0.25) {
      const states = [first, second].map((ca) => caRotationState(ca, T0 + h * HOUR));
      expect(states.filter((s) => s === 'active')).toHaveLength(1);
    }
  });

  it('tells the manager what to do', () => {
    expect(caRotationAction(first, false, T0 + 29 * HOUR)).toBe('none');
    expect(caRotationAction(first, false, T0 + 30 * HOUR)).toBe('prepare');
    expect(caRotationAction(first, true, T0 + 31 * HOUR)).toBe('none');
    expect(caRotationAction(first, true, T0 + 50 * HOUR)).toBe('activate');
  });
});

describe('nextRenewalCheck', () => {
  const s = { checkEveryMs: 60_000, retryInitialMs: 5_000, retryMaxMs: 300_000 };
  const cert = { notBefore: T0, notAfter: T0 + 24 * HOUR };

  it('checks every period before half-life, then exactly at half-life', () => {
    expect(nextRenewalCheck(cert, T0, 0, s)).toBe(T0 + 60_000);
    const justBefore = T0 + 12 * HOUR - 10_000;
    expect(nextRenewalCheck(cert, justBefore, 0, s)).toBe(T0 + 12 * HOUR);
  });

  it('is now from half-life on', () => {
    expect(nextRenewalCheck(cert, T0 + 12 * HOUR, 0, s)).toBe(T0 + 12 * HOUR);
    expect(nextRenewalCheck(cert, T0 + 30 * HOUR, 0, s)).toBe(T0 + 30 * HOUR);
  });

  it('backs off after failures, doubling to the cap', () => {
    const now = T0 + 13 * HOUR;
    expect(nextRenewalCheck(cert, now, 1, s) - now).toBe(5_000);
    expect(nextRenewalCheck(cert, now, 2, s) - now).toBe(10_000);
    expect(nextRenewalCheck(cert, now, 7, s) - now).toBe(300_000);
    expect(nextRenewalCheck(cert, now, 10_000, s) - now).toBe(300_000);
  });

  it('a 60 s certificate renews at 30 s', () => {
    const short = { notBefore: T0, notAfter: T0 + 60_000 };
    expect(nextRenewalCheck(short, T0, 0, s)).toBe(T0 + 30_000);
  });
});
