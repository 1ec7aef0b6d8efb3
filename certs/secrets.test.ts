import { describe, expect, it } from 'vitest';
import {
  assertSecret,
  checkSecret,
  constantTimeEqual,
  formatJoinToken,
  generateSecret,
  hashSecret,
  parseJoinToken,
  secretMatchesHash,
} from './secrets.ts';

const NOW = Date.UTC(2026, 0, 1);

describe('secrets', () => {
  it('generates 32-byte base64url secrets, all different', () => {
    const a = generateSecret();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a, 'base64url')).toHaveLength(32);
    expect(generateSecret()).not.toBe(a);
  });

  it('stores only a hash and matches it', () => {
    const s = generateSecret();
    const h = hashSecret(s);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(h).not.toContain(s);
    expect(secretMatchesHash(s, h)).toBe(true);
    expect(secretMatchesHash(generateSecret(), h)).toBe(false);
    expect(secretMatchesHash(s, 'abcd')).toBe(false);
    expect(secretMatchesHash(s, '')).toBe(false);
  });

  it('compares strings of any length', () => {
    expect(constantTimeEqual('abc', 'abc')).toBe(true);
    expect(constantTimeEqual('abc', 'abd')).toBe(false);
    expect(constantTimeEqual('abc', 'abcd')).toBe(false);
  });

  it('checks expiry and hash, a wrong secret never learning about expiry', () => {
    const s = generateSecret();
    const storedHash = hashSecret(s);
    const expiresAt = NOW + 1000;
    expect(checkSecret({ presented: s, storedHash, expiresAt, now: NOW })).toBe('ok');
    expect(checkSecret({ presented: s, storedHash, expiresAt, now: expiresAt })).toBe('expired');
    expect(checkSecret({ presented: 'x', storedHash, expiresAt, now: NOW })).toBe('mismatch');
    expect(checkSecret({ presented: 'x', storedHash, expiresAt, now: expiresAt })).toBe('mismatch');
    expect(() => assertSecret({ presented: s, storedHash, expiresAt, now: expiresAt })).toThrow(
      expect.objectContaining({ code: 'SS_KEY_EXPIRED' }),
    );
    expect(() => assertSecret({ presented: 'x', storedHash, expiresAt, now: NOW })).toThrow(
      expect.objectContaining({ code: 'SS_KEY_INVALID' }),
    );
  });

  it('formats and parses join tokens', () => {
    const secret = generateSecret();
    const fp = 'AB:'.repeat(31) + 'AB';
    const text = formatJoinToken({ caFingerprint: fp, secret });
    expect(text).toBe(`ss1.${'ab'.repeat(32)}.${secret}`);
    expect(parseJoinToken(text)).toEqual({ caFingerprint: 'ab'.repeat(32), secret });
    for (const bad of [
      '',
      'ss1..',
      `ss2.${'ab'.repeat(32)}.${secret}`,
      `ss1.${'ab'.repeat(31)}.${secret}`,
      `ss1.${'ab'.repeat(32)}.${secret}x`,
    ]) {
      let err: unknown;
      try {
        parseJoinToken(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'SS_KEY_INVALID' });
      expect(String((err as Error).message)).not.toContain(secret);
    }
  });
});
