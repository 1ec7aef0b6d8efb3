import { describe, expect, it } from 'vitest';
import { createRootCa } from './ca.ts';
import { fingerprintOfPem } from './inspect.ts';
import { mergeBundles, withoutExpired } from './trust-bundle.ts';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);

const fps = (bundle: string): string[] =>
  (bundle.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/g) ?? []).map((p) =>
    fingerprintOfPem(p),
  );

describe('trust bundles', () => {
  const old = createRootCa({ commonName: 'vault CA', validDays: 10, now: T0 });
  const next = createRootCa({ commonName: 'vault CA', validDays: 20, now: T0 + 5 * DAY });

  it('merges CAs once each, in order, byte for byte', () => {
    const b = mergeBundles(old.certPem, next.certPem + old.certPem, '');
    expect(fps(b)).toEqual([fingerprintOfPem(old.certPem), fingerprintOfPem(next.certPem)]);
    expect(b.startsWith(old.certPem.replace(/\r\n/g, '\n'))).toBe(true);
  });

  it('drops a CA once it has expired, and only then', () => {
    const b = mergeBundles(old.certPem, next.certPem);
    expect(fps(withoutExpired(b, T0 + 9 * DAY))).toHaveLength(2);
    expect(fps(withoutExpired(b, T0 + 11 * DAY))).toEqual([fingerprintOfPem(next.certPem)]);
  });
});
