import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF, backoffDelay, retryDecision } from './backoff.ts';

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the cap without jitter', () => {
    const delays = [0, 1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, () => 0));
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  });

  it('removes at most `jitter` of the delay', () => {
    expect(backoffDelay(3, () => 0.999999)).toBe(2000);
    expect(backoffDelay(3, () => 0.5)).toBe(3000);
    for (let n = 0; n < 20; n++) {
      const d = backoffDelay(n, Math.random);
      expect(d).toBeGreaterThanOrEqual(DEFAULT_BACKOFF.initialMs * (1 - DEFAULT_BACKOFF.jitter));
      expect(d).toBeLessThanOrEqual(DEFAULT_BACKOFF.maxMs);
    }
  });

  it('stays finite for absurd attempts and clamps bad input', () => {
    expect(backoffDelay(10_000, () => 0)).toBe(30000);
    expect(backoffDelay(-3, () => 0)).toBe(500);
    expect(backoffDelay(1, () => 7)).toBe(500);
  });
});

describe('retryDecision', () => {
  it.each([
    ['SS_PROTOCOL_INCOMPATIBLE', 'stop'],
    ['SS_NOT_PAIRED', 'stop'],
    ['SS_RESYNC_REQUIRED', 'stop'],
    ['SS_SEGMENT_OUT_OF_ORDER', 'resume'],
    ['SS_CHECKSUM_MISMATCH', 'retry'],
    ['SS_UNAVAILABLE', 'retry'],
    ['SS_CONFLICT', 'retry'],
  ] as const)('%s → %s', (code, decision) => {
    expect(retryDecision(code)).toBe(decision);
  });
});
