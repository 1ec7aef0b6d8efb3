/**
 * A vault's revoked host credentials, as the coordinator keeps them (issue #7): a set of host
 * identity URIs and certificate fingerprints with a version that grows by one on every change.
 * Hosts apply a pushed list only when its version is newer than theirs
 * (agent/common/revocation.ts), so the version must never repeat for different contents and
 * never go back. Pure: no I/O; the service stores the result before anyone is told.
 */

export interface RevokedSet {
  /** 0 = nothing was ever revoked in the vault; every change adds one. */
  readonly version: number;
  /** Host identity URIs, lower case, sorted (one spelling per identity). */
  readonly identities: readonly string[];
  /** SHA-256 certificate fingerprints, lower case, sorted. */
  readonly fingerprints: readonly string[];
}

export const EMPTY_REVOKED: RevokedSet = Object.freeze({
  version: 0,
  identities: [],
  fingerprints: [],
});

export interface RevokeOutcome {
  readonly list: RevokedSet;
  /** false when the entry was already listed: the list (and its version) stay as they were. */
  readonly changed: boolean;
}

function added(values: readonly string[], value: string): readonly string[] | undefined {
  const v = value.toLowerCase();
  if (values.includes(v)) return undefined;
  return [...values, v].sort();
}

/** Adds a host identity URI; revoking twice leaves the list and its version unchanged. */
export function revokeIdentity(list: RevokedSet, uri: string): RevokeOutcome {
  const identities = added(list.identities, uri);
  if (identities === undefined) return { list, changed: false };
  return { list: { ...list, version: list.version + 1, identities }, changed: true };
}

/** Adds one certificate's fingerprint; idempotent like revokeIdentity. */
export function revokeFingerprint(list: RevokedSet, fingerprint: string): RevokeOutcome {
  const fingerprints = added(list.fingerprints, fingerprint);
  if (fingerprints === undefined) return { list, changed: false };
  return { list: { ...list, version: list.version + 1, fingerprints }, changed: true };
}

/** Whether a host that reports holding `reported` needs the list sent again. */
export function hostIsBehind(list: RevokedSet, reported: number): boolean {
  return list.version > 0 && reported < list.version;
}

/** Whether `uri` (a host identity) is revoked by the list. */
export function isIdentityRevoked(list: RevokedSet, uri: string): boolean {
  return list.identities.includes(uri.toLowerCase());
}
