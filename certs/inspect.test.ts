import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRootCa, type CaMaterial } from './ca.ts';
import { createKeyAndCsr } from './csr.ts';
import { fingerprintsEqual, parseFingerprint } from './fingerprint.ts';
import { coordinatorIdentity } from './identity.ts';
import { assertFingerprint, certFacts, fingerprintOfPem, identityFromCertPem } from './inspect.ts';
import { signCsr } from './sign.ts';

const NOW = Date.UTC(2026, 5, 1);
let root: CaMaterial;
let other: CaMaterial;

beforeAll(() => {
  root = createRootCa({ commonName: 'root', validDays: 30, now: NOW });
  other = createRootCa({ commonName: 'root', validDays: 30, now: NOW });
});

describe('fingerprints', () => {
  it('are SHA-256 of the DER, as Node computes it, in 64 lowercase hex digits', () => {
    const fp = fingerprintOfPem(root.certPem);
    expect(fp).toMatch(/^[0-9a-f]{64}$/);
    const node = new X509Certificate(root.certPem).fingerprint256;
    expect(parseFingerprint(node)).toBe(fp);
    expect(fingerprintsEqual(node, fp)).toBe(true);
    expect(fingerprintOfPem(other.certPem)).not.toBe(fp);
  });

  it('fingerprint the first certificate of a bundle', () => {
    expect(fingerprintOfPem(root.certPem + other.certPem)).toBe(fingerprintOfPem(root.certPem));
  });

  it('refuse malformed fingerprints and pins that differ', () => {
    expect(() => parseFingerprint('abc')).toThrow(
      expect.objectContaining({ code: 'SS_BAD_INPUT' }),
    );
    expect(() => parseFingerprint('g'.repeat(64))).toThrow();
    expect(() => assertFingerprint(root.certPem, fingerprintOfPem(root.certPem))).not.toThrow();
    expect(() => assertFingerprint(other.certPem, fingerprintOfPem(root.certPem))).toThrow(
      expect.objectContaining({ code: 'SS_FINGERPRINT_MISMATCH' }),
    );
    expect(() => fingerprintOfPem('nope')).toThrow(
      expect.objectContaining({ code: 'SS_CERT_INVALID' }),
    );
  });
});

describe('identityFromCertPem and certFacts', () => {
  it('read the identity and validity of a leaf', () => {
    const identity = coordinatorIdentity('v1');
    const { csrPem } = createKeyAndCsr({ identity });
    const pem = signCsr({
      caCertPem: root.certPem,
      caKeyPem: root.keyPem,
      csrPem,
      identity,
      notAfter: NOW + 3_600_000,
      now: NOW,
      usage: 'server',
    });
    expect(identityFromCertPem(pem)).toEqual(identity);
    expect(certFacts(pem)).toMatchObject({ notAfter: NOW + 3_600_000, isCa: false });
    expect(certFacts(root.certPem)).toMatchObject({ isCa: true, subjectCommonName: 'root' });
  });

  it('refuse a certificate without identity', () => {
    expect(() => identityFromCertPem(root.certPem)).toThrow(
      expect.objectContaining({ code: 'SS_CERT_INVALID' }),
    );
  });
});
