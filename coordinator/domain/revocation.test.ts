import { describe, expect, it } from 'vitest';
import {
  EMPTY_REVOKED,
  hostIsBehind,
  isIdentityRevoked,
  revokeFingerprint,
  revokeIdentity,
} from './revocation.ts';

const A = 'secondsite://prod/host/hv-a';
const B = 'secondsite://prod/host/hv-b';

describe('the revoked list of a vault', () => {
  it('adds an identity with version + 1, lower-cased and sorted', () => {
    const one = revokeIdentity(EMPTY_REVOKED, B);
    expect(one).toEqual({ changed: true, list: { version: 1, identities: [B], fingerprints: [] } });
    const two = revokeIdentity(one.list, 'secondsite://prod/host/HV-A');
    expect(two.list).toEqual({ version: 2, identities: [A, B], fingerprints: [] });
    expect(isIdentityRevoked(two.list, A)).toBe(true);
    expect(isIdentityRevoked(two.list, 'secondsite://prod/host/hv-c')).toBe(false);
  });

  it('is idempotent: revoking twice keeps the list and its version', () => {
    const once = revokeIdentity(EMPTY_REVOKED, A).list;
    const again = revokeIdentity(once, A.toUpperCase().replace('SECONDSITE', 'secondsite'));
    expect(again.changed).toBe(false);
    expect(again.list).toBe(once);
    expect(revokeIdentity(once, A)).toEqual({ changed: false, list: once });
  });

  it('counts fingerprints in the same version sequence', () => {
    const a = revokeIdentity(EMPTY_REVOKED, A).list;
    const f = revokeFingerprint(a, 'AB:CD');
    expect(f.list).toEqual({ version: 2, identities: [A], fingerprints: ['ab:cd'] });
    expect(revokeFingerprint(f.list, 'ab:cd').changed).toBe(false);
  });

  it('says a host is behind only while it holds an older version of a non-empty list', () => {
    expect(hostIsBehind(EMPTY_REVOKED, 0)).toBe(false);
    const l = revokeIdentity(EMPTY_REVOKED, A).list;
    expect(hostIsBehind(l, 0)).toBe(true);
    expect(hostIsBehind(l, 1)).toBe(false);
    expect(hostIsBehind(l, 5)).toBe(false);
  });
});
