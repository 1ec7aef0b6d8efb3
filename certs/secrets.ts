/**
 * Secrets of registration keys and join tokens. The issuer stores only a hash; the holder
 * keeps the secret. Secrets are 32 random bytes, so a plain SHA-256 is enough: there is
 * nothing to brute-force that a slow or keyed hash would protect.
 *
 * Comparisons are constant-time on fixed-length digests, so neither the content nor the length
 * of a guess shows in the timing. Every secret has a required expiry.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { SecondsiteError } from '../common/errors/errors.ts';
import { parseFingerprint } from './fingerprint.ts';

export const SECRET_BYTES = 32;

/** 32 random bytes, base64url (43 characters, no padding). */
export function generateSecret(): string {
  return randomBytes(SECRET_BYTES).toString('base64url');
}

/** SHA-256 of the secret's UTF-8 bytes, 64 lowercase hex digits: what the issuer stores. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Constant-time string equality (both sides hashed first, so lengths do not leak). */
export function constantTimeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a, 'utf8').digest();
  const db = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(da, db);
}

export function secretMatchesHash(secret: string, storedHash: string): boolean {
  const presented = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}

export type SecretCheck = 'ok' | 'expired' | 'mismatch';

/**
 * Checks a presented secret against its stored hash and expiry. Both checks always run, so
 * the time taken does not say which failed. A mismatch wins over expiry: only the holder of
 * the real secret learns that it has expired.
 */
export function checkSecret(opts: {
  presented: string;
  storedHash: string;
  /** ms since the epoch; required, secrets never live forever */
  expiresAt: number;
  now: number;
}): SecretCheck {
  const matches = secretMatchesHash(opts.presented, opts.storedHash);
  const expired = !(opts.now < opts.expiresAt);
  if (!matches) return 'mismatch';
  return expired ? 'expired' : 'ok';
}

/** checkSecret that throws SS_KEY_INVALID or SS_KEY_EXPIRED; the message names nothing else. */
export function assertSecret(opts: Parameters<typeof checkSecret>[0]): void {
  const r = checkSecret(opts);
  if (r === 'mismatch')
    throw new SecondsiteError('SS_KEY_INVALID', 'the key or token is not valid');
  if (r === 'expired') throw new SecondsiteError('SS_KEY_EXPIRED', 'the key or token has expired');
}

/**
 * A join token names the provider CA's fingerprint (pinned by the joining host: no trust on
 * first use) and a secret: `ss1.<64 hex>.<base64url secret>`. Neither alphabet holds ".".
 */
export interface JoinToken {
  readonly caFingerprint: string;
  readonly secret: string;
}

const JOIN_TOKEN_RE = /^ss1\.([0-9a-f]{64})\.([A-Za-z0-9_-]{43})$/;

export function formatJoinToken(token: JoinToken): string {
  const text = `ss1.${parseFingerprint(token.caFingerprint)}.${token.secret}`;
  parseJoinToken(text);
  return text;
}

/** Throws SS_KEY_INVALID without echoing the token (it holds a secret). */
export function parseJoinToken(text: string): JoinToken {
  const m = JOIN_TOKEN_RE.exec(text.trim());
  if (!m) throw new SecondsiteError('SS_KEY_INVALID', 'the join token is malformed');
  return { caFingerprint: m[1] ?? '', secret: m[2] ?? '' };
}
