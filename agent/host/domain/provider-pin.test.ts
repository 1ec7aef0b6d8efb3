import { describe, expect, it } from 'vitest';
import { decidePin, livePins, type CandidateCa, type PinState } from './provider-pin.ts';

const T0 = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;
const PROVIDER = 'secondsite://prod/provider/ny';

const state: PinState = {
  vault: 'prod',
  provider: PROVIDER,
  pins: [{ fingerprint: 'a'.repeat(64), notAfter: T0 + 365 * DAY }],
};

/** A successor exactly as the coordinator issues one for this provider. */
const successor: CandidateCa = {
  fingerprint: 'b'.repeat(64),
  notAfter: T0 + 547 * DAY,
  isCa: true,
  pathLen: 0,
  keyCertSign: true,
  permittedVaults: ['prod'],
  uris: [PROVIDER],
  chain: 'ok',
};

const now = T0 + 200 * DAY;

describe('decidePin', () => {
  it('pins the same provider’s successor beside the current CA', () => {
    expect(decidePin(state, successor, now)).toEqual({
      kind: 'accept',
      pins: [...state.pins, { fingerprint: successor.fingerprint, notAfter: successor.notAfter }],
    });
  });

  it('changes nothing for a CA already pinned', () => {
    expect(decidePin(state, { ...successor, fingerprint: 'a'.repeat(64) }, now)).toEqual({
      kind: 'known',
    });
  });

  it('drops pins of expired CAs when it pins a successor', () => {
    const later = state.pins[0]!.notAfter + 1;
    const next = { ...successor, notAfter: T0 + 900 * DAY, fingerprint: 'c'.repeat(64) };
    const two = {
      ...state,
      pins: [...state.pins, { fingerprint: 'b'.repeat(64), notAfter: successor.notAfter }],
    };
    const d = decidePin(two, next, later);
    expect(d.kind === 'accept' && d.pins.map((p) => p.fingerprint[0])).toEqual(['b', 'c']);
  });

  it.each<[string, Partial<CandidateCa>, string]>([
    ['a CA not chaining to the trusted root', { chain: 'unknown-ca' }, 'not-chained'],
    ['an expired CA', { chain: 'expired' }, 'not-chained'],
    ['a CA of another vault', { permittedVaults: ['test'] }, 'other-vault'],
    ['a CA permitting two vaults', { permittedVaults: ['prod', 'test'] }, 'other-vault'],
    ['a CA without name constraints', { permittedVaults: undefined }, 'other-vault'],
    ['unreadable name constraints', { permittedVaults: null }, 'other-vault'],
    ['another provider’s CA', { uris: ['secondsite://prod/provider/chi'] }, 'other-provider'],
    [
      'a CA naming two identities',
      { uris: [PROVIDER, 'secondsite://prod/provider/chi'] },
      'other-provider',
    ],
    ['a CA naming none', { uris: [] }, 'other-provider'],
    ['a CA that may sign CAs', { pathLen: undefined }, 'not-a-vault-ca'],
    ['a leaf', { isCa: false }, 'not-a-vault-ca'],
    ['a CA without keyCertSign', { keyCertSign: false }, 'not-a-vault-ca'],
    ['an older CA brought back', { notAfter: T0 + 300 * DAY }, 'not-newer'],
  ])('refuses %s', (_what, change, reason) => {
    expect(decidePin(state, { ...successor, ...change }, now)).toMatchObject({
      kind: 'refuse',
      reason,
    });
  });
});

describe('livePins', () => {
  it('keeps the pins whose CA has not expired', () => {
    const pins = [
      { fingerprint: 'a', notAfter: T0 },
      { fingerprint: 'b', notAfter: T0 + 1 },
    ];
    expect(livePins(pins, T0).map((p) => p.fingerprint)).toEqual(['b']);
  });
});
