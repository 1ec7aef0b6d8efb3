import { describe, expect, it } from 'vitest';
import { nextCaEvent, providerCaStep, signingGeneration } from './ca-generations.ts';

const H = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);
// A 60-hour CA: prepare at 30 h, activate at 50 h, retire at 60 h.
const current = { notBefore: T0, notAfter: T0 + 60 * H };
const next = { notBefore: T0 + 30 * H, notAfter: T0 + 90 * H };

describe('provider CA generations', () => {
  it('prepares a successor from the half-life on, once', () => {
    expect(providerCaStep(current, undefined, T0 + 30 * H - 1)).toBe('none');
    expect(providerCaStep(current, undefined, T0 + 30 * H)).toBe('prepare');
    expect(providerCaStep(current, next, T0 + 31 * H)).toBe('none');
  });

  it('signs with the successor from 5/6 of the current life on', () => {
    expect(signingGeneration(current, undefined, T0 + 55 * H)).toBe('current');
    expect(signingGeneration(current, next, T0 + 50 * H - 1)).toBe('current');
    expect(signingGeneration(current, next, T0 + 50 * H)).toBe('next');
  });

  it('retires the current CA at its end', () => {
    expect(providerCaStep(current, next, T0 + 60 * H - 1)).toBe('none');
    expect(providerCaStep(current, next, T0 + 60 * H)).toBe('retire');
  });

  it('names the next event', () => {
    expect(nextCaEvent(current, undefined, T0)).toBe(T0 + 30 * H);
    expect(nextCaEvent(current, undefined, T0 + 30 * H)).toBeUndefined();
    expect(nextCaEvent(current, next, T0 + 31 * H)).toBe(T0 + 50 * H);
    expect(nextCaEvent(current, next, T0 + 50 * H)).toBe(T0 + 60 * H);
  });
});
