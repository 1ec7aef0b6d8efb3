import { describe, expect, it } from 'vitest';
import { isSecondsiteError } from '../../../common/errors/errors.ts';
import { ALL_FEATURES, Feature, LOCAL_HELLO, hasFeature, negotiate } from './protocol.ts';

const hello = (protocolMin: number, protocolMax: number, featureFlags = ALL_FEATURES) => ({
  protocolMin,
  protocolMax,
  featureFlags,
});

describe('negotiate', () => {
  it('takes the lower maximum and the AND of the flags', () => {
    expect(negotiate(hello(1, 3), hello(2, 5, Feature.zstd | Feature.zeroRanges))).toEqual({
      protocol: 3,
      features: Feature.zstd | Feature.zeroRanges,
    });
  });

  it('is symmetric, so both sides reach the same agreement', () => {
    const a = hello(1, 4, Feature.blake3 | Feature.zstd);
    const b = hello(3, 6, Feature.blake3);
    expect(negotiate(a, b)).toEqual(negotiate(b, a));
  });

  it('agrees with itself on everything', () => {
    const r = negotiate(LOCAL_HELLO, LOCAL_HELLO);
    expect(r.protocol).toBe(LOCAL_HELLO.protocolMax);
    expect(hasFeature(r, Feature.zstd) && hasFeature(r, Feature.blake3)).toBe(true);
  });

  it.each([
    ['disjoint, peer newer', hello(1, 1), hello(2, 3)],
    ['disjoint, peer older', hello(3, 4), hello(1, 2)],
    ['malformed peer range', hello(1, 1), hello(2, 1)],
    ['peer range from 0', hello(1, 1), hello(0, 1)],
  ])('refuses %s with SS_PROTOCOL_INCOMPATIBLE', (_name, local, remote) => {
    let err: unknown;
    try {
      negotiate(local, remote);
    } catch (e) {
      err = e;
    }
    expect(isSecondsiteError(err) && err.code).toBe('SS_PROTOCOL_INCOMPATIBLE');
  });

  it('keeps the agreed flags an unsigned 32-bit value', () => {
    expect(negotiate(hello(1, 1, 0xffffffff), hello(1, 1, 0x80000001)).features).toBe(0x80000001);
  });
});
