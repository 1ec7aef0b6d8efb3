/**
 * Registration keys (R2) as pure rules: validity, the stored record, and the refusal table.
 * The key service (coordinator/registration/key-service.ts) does the I/O and hashing and asks
 * these functions what to do.
 *
 * Order of checks (first hit wins), and why:
 *   1. unknown key id            → SS_KEY_ALTERED     the id was changed (a key of another
 *                                                     coordinator fails the CA pin before)
 *   2. secret does not match     → SS_KEY_ALTERED     only the holder of the real secret learns
 *                                                     anything more below (nothing leaks to a
 *                                                     guesser)
 *   3. vault id differs          → SS_KEY_OTHER_VAULT
 *   4. any other field differs   → SS_KEY_ALTERED
 *   5. revoked                   → SS_KEY_REVOKED
 *   6. expired (record's expiry) → SS_KEY_EXPIRED
 *   7. single-use, used by another registration → SS_KEY_USED
 *   8. bound to another server   → SS_KEY_WRONG_SERVER
 */
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { RegistrationKeyFile } from '../../common/wire/registration-key.ts';

/** R2: a key is valid for 5 days after it is made; that is also the longest allowed. */
export const KEY_MAX_VALIDITY_MS = 5 * 24 * 60 * 60 * 1000;

export interface KeyRecord {
  readonly id: string;
  readonly vaultId: string;
  readonly vault: string;
  readonly coordinatorUrl: string;
  readonly caFingerprint: string;
  /** SHA-256 of the secret (hex); the secret itself is never stored. */
  readonly secretHash: string;
  readonly issuedAt: string;
  readonly expiresAt: string;
  readonly singleUse: boolean;
  readonly server: string | null;
  readonly revokedAt: string | null;
  /** Registration ids that used the key (one at most for a single-use key). */
  readonly usedBy: readonly string[];
}

export type KeyState = 'valid' | 'expired' | 'revoked' | 'used';

export function keyState(record: KeyRecord, now: number): KeyState {
  if (record.revokedAt !== null) return 'revoked';
  if (!(now < Date.parse(record.expiresAt))) return 'expired';
  if (record.singleUse && record.usedBy.length > 0) return 'used';
  return 'valid';
}

/** Validity asked for with --valid-for; refuses zero, negatives and more than 5 days. */
export function keyValidity(requestedMs: number | undefined): number | 'too-long' | 'too-short' {
  const ms = requestedMs ?? KEY_MAX_VALIDITY_MS;
  if (!(ms > 0)) return 'too-short';
  if (ms > KEY_MAX_VALIDITY_MS) return 'too-long';
  return ms;
}

export function newKeyRecord(a: {
  id: string;
  vaultId: string;
  vault: string;
  coordinatorUrl: string;
  caFingerprint: string;
  secretHash: string;
  now: number;
  validForMs: number;
  singleUse: boolean;
  server: string | null;
}): KeyRecord {
  return {
    id: a.id,
    vaultId: a.vaultId,
    vault: a.vault,
    coordinatorUrl: a.coordinatorUrl,
    caFingerprint: a.caFingerprint,
    secretHash: a.secretHash,
    issuedAt: new Date(a.now).toISOString(),
    expiresAt: new Date(a.now + a.validForMs).toISOString(),
    singleUse: a.singleUse,
    server: a.server,
    revokedAt: null,
    usedBy: [],
  };
}

/** The file handed to the administrator: the record's fields plus the secret. */
export function keyFileFor(record: KeyRecord, secret: string): RegistrationKeyFile {
  return {
    version: 1,
    vaultId: record.vaultId,
    vault: record.vault,
    coordinatorUrl: record.coordinatorUrl,
    caFingerprint: record.caFingerprint,
    keyId: record.id,
    secret,
    issuedAt: record.issuedAt,
    expiresAt: record.expiresAt,
    singleUse: record.singleUse,
    server: record.server,
  };
}

export type KeyRefusal =
  'unknown' | 'altered' | 'other-vault' | 'revoked' | 'expired' | 'used' | 'wrong-server';

/** Fields compared between the presented file and the record (vaultId has its own refusal). */
const COMPARED = [
  'vault',
  'coordinatorUrl',
  'caFingerprint',
  'issuedAt',
  'expiresAt',
  'singleUse',
  'server',
] as const;

/** Names compare case-insensitively, as server names do everywhere in a vault. */
function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

export function checkKey(a: {
  record: KeyRecord | undefined;
  presented: RegistrationKeyFile;
  /** Whether the presented secret hashes to record.secretHash (computed by the caller). */
  secretMatches: boolean;
  registrationId: string;
  serverName: string;
  now: number;
}): KeyRefusal | 'ok' {
  const { record, presented } = a;
  if (record === undefined) return 'unknown';
  if (!a.secretMatches) return 'altered';
  if (presented.vaultId !== record.vaultId) return 'other-vault';
  if (COMPARED.some((f) => presented[f] !== record[f])) return 'altered';
  if (record.revokedAt !== null) return 'revoked';
  if (!(a.now < Date.parse(record.expiresAt))) return 'expired';
  // The same registration presenting again (a resend after a broken connection) is not a reuse.
  const usedByOther = record.usedBy.some((r) => r !== a.registrationId);
  if (record.singleUse && usedByOther) return 'used';
  if (record.server !== null && !sameName(record.server, a.serverName)) return 'wrong-server';
  return 'ok';
}

/** The refusal as the typed error the provider shows: which problem, and what to do. */
export function keyRefusalError(
  refusal: KeyRefusal,
  ctx: { keyId: string; record?: KeyRecord; presentedVault?: string },
): SecondsiteError {
  const id = ctx.keyId;
  const r = ctx.record;
  switch (refusal) {
    case 'unknown':
      return new SecondsiteError(
        'SS_KEY_ALTERED',
        `registration key ${id} was not issued by this coordinator: the file was altered; download a new key and use the file unchanged`,
        { keyId: id },
      );
    case 'altered':
      return new SecondsiteError(
        'SS_KEY_ALTERED',
        `registration key ${id} was altered after download (its fields or secret differ from what was issued); download a new key and use the file unchanged`,
        { keyId: id },
      );
    case 'other-vault':
      return new SecondsiteError(
        'SS_KEY_OTHER_VAULT',
        `registration key ${id} belongs to vault ${r?.vault ?? '?'}, not ${ctx.presentedVault ?? 'the one asked for'}; download a key from the vault you want to join`,
        { keyId: id, keyVault: r?.vault },
      );
    case 'revoked':
      return new SecondsiteError(
        'SS_KEY_REVOKED',
        `registration key ${id} was revoked at ${r?.revokedAt ?? '?'}; download a new key for vault ${r?.vault ?? '?'}`,
        { keyId: id, revokedAt: r?.revokedAt },
      );
    case 'expired':
      return new SecondsiteError(
        'SS_KEY_EXPIRED',
        `registration key ${id} expired at ${r?.expiresAt ?? '?'}; download a new key (keys are valid for at most 5 days)`,
        { keyId: id, expiresAt: r?.expiresAt },
      );
    case 'used':
      return new SecondsiteError(
        'SS_KEY_USED',
        `registration key ${id} was single-use and has already registered a server; download a new key`,
        { keyId: id },
      );
    case 'wrong-server':
      return new SecondsiteError(
        'SS_KEY_WRONG_SERVER',
        `registration key ${id} is bound to server ${r?.server ?? '?'}; register under that name or download a key for this server`,
        { keyId: id, boundTo: r?.server },
      );
  }
}

/** Records a successful use; idempotent for the same registration. */
export function markUsed(record: KeyRecord, registrationId: string): KeyRecord {
  if (record.usedBy.includes(registrationId)) return record;
  return { ...record, usedBy: [...record.usedBy, registrationId] };
}
