/**
 * Chain verification outside TLS: for pinning a CA before first contact, checking a stored
 * certificate at start-up, and deciding renewal. (Inside TLS, OpenSSL verifies the chain.)
 *
 * Issuers are matched by subject name and, when both sides carry them, by key identifier
 * (AKI = SKI), so a certificate from another CA with the same name is "unknown-ca", not a
 * confusing "bad-signature". Limits enforced: validity of every link, CA flag and keyCertSign
 * on issuers, pathLen, and the vault URI name constraint our intermediates carry.
 */
import forge from 'node-forge';
import { SecondsiteError } from '../common/errors/errors.ts';
import {
  altNamesOf,
  NAME_CONSTRAINTS_OID,
  parseCertBundle,
  SAN_URI,
  type ForgeCert,
} from './forge-pki.ts';
import { tryParseIdentity } from './identity.ts';

export type ChainFailure =
  | 'malformed'
  | 'expired'
  | 'not-yet-valid'
  | 'unknown-ca'
  | 'bad-signature'
  | 'not-a-ca'
  | 'name-constraint';

export type ChainResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: ChainFailure; readonly message: string };

/** Longest chain followed: leaf, a few intermediates, root. */
const MAX_DEPTH = 5;

class ChainError extends Error {
  constructor(
    readonly reason: ChainFailure,
    message: string,
  ) {
    super(message);
  }
}

function checkValidity(cert: ForgeCert, now: number, what: string): void {
  if (now < cert.validity.notBefore.getTime()) {
    throw new ChainError(
      'not-yet-valid',
      `${what} is not valid before ${cert.validity.notBefore.toISOString()}`,
    );
  }
  if (now > cert.validity.notAfter.getTime()) {
    throw new ChainError('expired', `${what} expired at ${cert.validity.notAfter.toISOString()}`);
  }
}

function ext<T>(cert: ForgeCert, name: string): T | undefined {
  return cert.getExtension(name) as T | undefined;
}

/** Could `parent` have issued `child`: same name and, if both say, same key identifier. */
function namesIssuer(parent: ForgeCert, child: ForgeCert): boolean {
  if (!parent.issued(child)) return false;
  const ski = ext<{ subjectKeyIdentifier?: string }>(parent, 'subjectKeyIdentifier');
  const aki = ext<{ value?: string }>(child, 'authorityKeyIdentifier');
  if (!ski?.subjectKeyIdentifier || !aki?.value) return true;
  const akiSeq = forge.asn1.fromDer(aki.value);
  const keyId = (akiSeq.value as forge.asn1.Asn1[]).find(
    (v) => v.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && v.type === 0,
  );
  if (!keyId || typeof keyId.value !== 'string') return true;
  return forge.util.bytesToHex(keyId.value) === ski.subjectKeyIdentifier;
}

function checkIssuerIsCa(issuer: ForgeCert, casBelow: number, now: number): void {
  const bc = ext<{ cA?: boolean; pathLenConstraint?: number }>(issuer, 'basicConstraints');
  if (!bc?.cA) throw new ChainError('not-a-ca', 'the issuer is not a CA');
  const ku = ext<{ keyCertSign?: boolean }>(issuer, 'keyUsage');
  if (ku && !ku.keyCertSign)
    throw new ChainError('not-a-ca', 'the issuer may not sign certificates');
  if (bc.pathLenConstraint !== undefined && casBelow > bc.pathLenConstraint) {
    throw new ChainError('not-a-ca', 'the chain is longer than the issuer allows (pathLen)');
  }
  checkValidity(issuer, now, 'an issuing CA');
}

/** Hosts permitted by a nameConstraints extension holding only URI subtrees (ours). */
function permittedUriHosts(cert: ForgeCert): string[] | undefined {
  const nc = cert.extensions.find((e: { id?: string }) => e.id === NAME_CONSTRAINTS_OID) as
    { value: string } | undefined;
  if (!nc) return undefined;
  const seq = forge.asn1.fromDer(nc.value).value as forge.asn1.Asn1[];
  const hosts: string[] = [];
  for (const part of seq) {
    if (part.type !== 0) throw new ChainError('name-constraint', 'unsupported excluded subtrees');
    for (const subtree of part.value as forge.asn1.Asn1[]) {
      const base = (subtree.value as forge.asn1.Asn1[])[0];
      if (!base || base.type !== SAN_URI || typeof base.value !== 'string') {
        throw new ChainError('name-constraint', 'unsupported name constraint type');
      }
      hosts.push(base.value.toLowerCase());
    }
  }
  return hosts;
}

/**
 * The URI hosts (vaults) a CA's nameConstraints permit: undefined when it has none; throws
 * for constraint kinds we never issue. For callers comparing two CAs' limits (provider pins).
 */
export function permittedVaultsOf(cert: ForgeCert): string[] | undefined {
  return permittedUriHosts(cert);
}

function checkNameConstraints(leaf: ForgeCert, issuer: ForgeCert): void {
  const hosts = permittedUriHosts(issuer);
  if (!hosts) return;
  for (const alt of altNamesOf(leaf).filter((a) => a.type === SAN_URI)) {
    const vault = tryParseIdentity(alt.value)?.vault;
    if (vault === undefined || !hosts.includes(vault)) {
      throw new ChainError('name-constraint', `URI ${alt.value} is outside the issuer's vault`);
    }
  }
}

/** Finds the issuer among `pool` and checks its signature on `child`. */
function findIssuer(child: ForgeCert, pool: readonly ForgeCert[]): ForgeCert | 'none' | 'bad' {
  const named = pool.filter((p) => namesIssuer(p, child));
  if (named.length === 0) return 'none';
  for (const p of named) {
    try {
      if (p.verify(child)) return p;
    } catch {
      // A parse or key-type failure on one candidate: try the next one.
    }
  }
  return 'bad';
}

function walk(
  leaf: ForgeCert,
  intermediates: ForgeCert[],
  anchors: ForgeCert[],
  now: number,
): void {
  checkValidity(leaf, now, 'the certificate');
  let current = leaf;
  for (let casBelow = 0; casBelow < MAX_DEPTH; casBelow++) {
    const anchor = findIssuer(current, anchors);
    const issuer = typeof anchor !== 'string' ? anchor : findIssuer(current, intermediates);
    if (issuer === 'none') {
      if (anchor === 'bad') throw new ChainError('bad-signature', 'signature does not verify');
      throw new ChainError('unknown-ca', 'no trusted CA issued the certificate');
    }
    if (issuer === 'bad') throw new ChainError('bad-signature', 'signature does not verify');
    checkIssuerIsCa(issuer, casBelow, now);
    checkNameConstraints(leaf, issuer);
    if (issuer === anchor) return;
    current = issuer;
  }
  throw new ChainError('unknown-ca', 'chain too long');
}

/**
 * Verifies `leafPem` (a leaf, optionally followed by intermediates) up to one of `caPems`
 * (trust anchors) at `now` (ms since the epoch).
 */
export function verifyChain(leafPem: string, caPems: readonly string[], now: number): ChainResult {
  let bundle: ForgeCert[];
  let anchors: ForgeCert[];
  try {
    bundle = parseCertBundle(leafPem);
    anchors = caPems.flatMap((p) => parseCertBundle(p, 'CA certificate'));
  } catch (e) {
    return { ok: false, reason: 'malformed', message: (e as Error).message };
  }
  const [leaf, ...intermediates] = bundle;
  try {
    if (!leaf) throw new ChainError('malformed', 'no certificate');
    walk(leaf, intermediates, anchors, now);
    return { ok: true };
  } catch (e) {
    if (e instanceof ChainError) return { ok: false, reason: e.reason, message: e.message };
    return { ok: false, reason: 'malformed', message: (e as Error).message };
  }
}

/** verifyChain that throws SS_CERT_INVALID with the reason in `details.reason`. */
export function assertChain(leafPem: string, caPems: readonly string[], now: number): void {
  const r = verifyChain(leafPem, caPems, now);
  if (!r.ok) {
    throw new SecondsiteError('SS_CERT_INVALID', `certificate chain refused: ${r.message}`, {
      reason: r.reason,
    });
  }
}
