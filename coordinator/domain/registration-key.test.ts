import { describe, expect, it } from 'vitest';
import type { RegistrationKeyFile } from '../../common/wire/registration-key.ts';
import {
  KEY_MAX_VALIDITY_MS,
  checkKey,
  keyFileFor,
  keyRefusalError,
  keyState,
  keyValidity,
  markUsed,
  newKeyRecord,
  type KeyRecord,
} from './registration-key.ts';

const NOW = Date.UTC(2026, 0, 1);
const SECRET = 'a'.repeat(43);

function record(over: Partial<Parameters<typeof newKeyRecord>[0]> = {}): KeyRecord {
  return newKeyRecord({
    id: 'k-000000000001',
    vaultId: 'v-000000000001',
    vault: 'prod',
    coordinatorUrl: 'https://127.0.0.1:9443',
    caFingerprint: 'f'.repeat(64),
    secretHash: 'h',
    now: NOW,
    validForMs: KEY_MAX_VALIDITY_MS,
    singleUse: false,
    server: null,
    ...over,
  });
}

function check(
  r: KeyRecord | undefined,
  presented: RegistrationKeyFile,
  over: { now?: number; secretMatches?: boolean; serverName?: string; reg?: string } = {},
) {
  return checkKey({
    record: r,
    presented,
    secretMatches: over.secretMatches ?? true,
    registrationId: over.reg ?? 'reg-1',
    serverName: over.serverName ?? 'VMM-NewYork',
    now: over.now ?? NOW + 1000,
  });
}

describe('registration key rules', () => {
  it('accepts the file as issued', () => {
    const r = record();
    expect(check(r, keyFileFor(r, SECRET))).toBe('ok');
  });

  it('defaults to, and never exceeds, 5 days', () => {
    expect(keyValidity(undefined)).toBe(5 * 24 * 3600 * 1000);
    expect(keyValidity(3600_000)).toBe(3600_000);
    expect(keyValidity(KEY_MAX_VALIDITY_MS + 1)).toBe('too-long');
    expect(keyValidity(0)).toBe('too-short');
  });

  it('refuses an expired key at the record’s expiry (fake clock), not before', () => {
    const r = record({ validForMs: 3600_000 });
    const file = keyFileFor(r, SECRET);
    expect(check(r, file, { now: NOW + 3600_000 - 1 })).toBe('ok');
    expect(check(r, file, { now: NOW + 3600_000 })).toBe('expired');
    expect(keyState(r, NOW + 3600_000)).toBe('expired');
  });

  it.each([
    ['vault', { vault: 'other' }, 'altered'],
    ['coordinatorUrl', { coordinatorUrl: 'https://evil:1' }, 'altered'],
    ['caFingerprint', { caFingerprint: 'e'.repeat(64) }, 'altered'],
    ['issuedAt', { issuedAt: new Date(NOW + 1).toISOString() }, 'altered'],
    ['expiresAt', { expiresAt: new Date(NOW + 9 * KEY_MAX_VALIDITY_MS).toISOString() }, 'altered'],
    ['singleUse', { singleUse: true }, 'altered'],
    ['server', { server: 'VMM-Chicago' }, 'altered'],
    ['vaultId', { vaultId: 'v-000000000002' }, 'other-vault'],
  ])('refuses a file whose %s was changed', (_f, patch, refusal) => {
    const r = record();
    expect(check(r, { ...keyFileFor(r, SECRET), ...patch })).toBe(refusal);
  });

  it('refuses a changed secret as altered, before anything else is revealed', () => {
    const r = { ...record(), revokedAt: new Date(NOW).toISOString() };
    expect(check(r, keyFileFor(r, SECRET), { secretMatches: false })).toBe('altered');
  });

  it('refuses an unknown key id', () => {
    const r = record();
    expect(check(undefined, keyFileFor(r, SECRET))).toBe('unknown');
  });

  it('refuses a revoked key', () => {
    const r = { ...record(), revokedAt: new Date(NOW).toISOString() };
    expect(check(r, keyFileFor(r, SECRET))).toBe('revoked');
  });

  it('lets a single-use key register once; the same registration may resend', () => {
    const r = markUsed(record({ singleUse: true }), 'reg-1');
    const file = keyFileFor(r, SECRET);
    expect(check(r, file, { reg: 'reg-1' })).toBe('ok');
    expect(check(r, file, { reg: 'reg-2' })).toBe('used');
    expect(markUsed(r, 'reg-1')).toBe(r);
  });

  it('binds a key to a server name, case-insensitively', () => {
    const r = record({ server: 'VMM-NewYork' });
    const file = keyFileFor(r, SECRET);
    expect(check(r, file, { serverName: 'vmm-newyork' })).toBe('ok');
    expect(check(r, file, { serverName: 'VMM-Chicago' })).toBe('wrong-server');
  });

  it.each([
    ['unknown', 'SS_KEY_ALTERED'],
    ['altered', 'SS_KEY_ALTERED'],
    ['other-vault', 'SS_KEY_OTHER_VAULT'],
    ['revoked', 'SS_KEY_REVOKED'],
    ['expired', 'SS_KEY_EXPIRED'],
    ['used', 'SS_KEY_USED'],
    ['wrong-server', 'SS_KEY_WRONG_SERVER'],
  ] as const)('maps %s to %s with a message that says what to do', (refusal, code) => {
    const e = keyRefusalError(refusal, { keyId: 'k-000000000001', record: record() });
    expect(e.code).toBe(code);
    expect(e.message).toMatch(/download|register under/);
  });
});
