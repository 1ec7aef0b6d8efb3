/**
 * Certificate fingerprints: SHA-256 of the DER certificate as 64 lowercase hex digits, no
 * colons. This one form is written into registration key files and join tokens and compared
 * on pinning. `parseFingerprint` also accepts the colon-separated uppercase form that Node and
 * OpenSSL print, so an operator can paste either. No forge here (peer.ts uses it too).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { SecondsiteError } from '../common/errors/errors.ts';

export function fingerprintOfDer(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

/** Canonical form of a fingerprint given with or without colons, in either case. */
export function parseFingerprint(text: string): string {
  const hex = text.trim().replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new SecondsiteError('SS_BAD_INPUT', 'fingerprint: expected 64 hex digits (SHA-256)', {
      field: 'fingerprint',
    });
  }
  return hex;
}

export function fingerprintsEqual(a: string, b: string): boolean {
  const da = Buffer.from(parseFingerprint(a), 'hex');
  const db = Buffer.from(parseFingerprint(b), 'hex');
  return timingSafeEqual(da, db);
}
