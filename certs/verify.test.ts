import forge from 'node-forge';
import { beforeAll, describe, expect, it } from 'vitest';
import { createIntermediateCa, createRootCa, type CaMaterial } from './ca.ts';
import { createKeyAndCsr } from './csr.ts';
import { DAY_MS, parseCertPem, parseKeyPem, certToPem } from './forge-pki.ts';
import { hostIdentity } from './identity.ts';
import { issue, signCsr } from './sign.ts';
import { assertChain, verifyChain } from './verify.ts';

const NOW = Date.UTC(2026, 5, 1);
const ID = hostIdentity('v1', 'hv-a1');
let root: CaMaterial;
let leafKey: string;
let csrPem: string;

beforeAll(() => {
  root = createRootCa({ commonName: 'test root', validDays: 365, now: NOW - 30 * DAY_MS });
  ({ keyPem: leafKey, csrPem } = createKeyAndCsr({ identity: ID }));
});

function leaf(ca: CaMaterial, now = NOW, validDays = 2, identity = ID, csr = csrPem): string {
  return signCsr({
    caCertPem: ca.certPem,
    caKeyPem: ca.keyPem,
    csrPem: csr,
    identity,
    validDays,
    now,
    usage: 'both',
  });
}

const reason = (pem: string, cas: string[], now = NOW): string | undefined => {
  const r = verifyChain(pem, cas, now);
  return r.ok ? undefined : r.reason;
};

describe('verifyChain', () => {
  it('accepts a leaf signed by a trusted CA, and the CA itself', () => {
    expect(verifyChain(leaf(root), [root.certPem], NOW)).toEqual({ ok: true });
    expect(verifyChain(root.certPem, [root.certPem], NOW)).toEqual({ ok: true });
  });

  it('refuses expired and not-yet-valid leaves', () => {
    expect(reason(leaf(root, NOW - 10 * DAY_MS, 1), [root.certPem])).toBe('expired');
    expect(reason(leaf(root, NOW + 10 * DAY_MS, 1), [root.certPem])).toBe('not-yet-valid');
  });

  it('refuses a leaf from another CA, even one with the same name', () => {
    const sameName = createRootCa({ commonName: 'test root', validDays: 365, now: NOW });
    const other = createRootCa({ commonName: 'other root', validDays: 365, now: NOW });
    expect(reason(leaf(sameName), [root.certPem])).toBe('unknown-ca');
    expect(reason(leaf(other), [root.certPem])).toBe('unknown-ca');
    expect(reason(leaf(root), [])).toBe('unknown-ca');
    expect(verifyChain(leaf(other), [root.certPem, other.certPem], NOW)).toEqual({ ok: true });
  });

  it('refuses a tampered leaf', () => {
    const [block] = forge.pem.decode(leaf(root));
    const forged = forge.pem.encode({ ...block!, body: block!.body.replace('hv-a1', 'hv-a2') });
    expect(reason(forged, [root.certPem])).toBe('bad-signature');
  });

  it('refuses an expired CA', () => {
    const old = createRootCa({ commonName: 'old', validDays: 1, now: NOW - 10 * DAY_MS });
    const l = leaf(old, NOW - 10 * DAY_MS + 1000, 30);
    // The leaf was cut to the CA's lifetime, so it has expired too.
    expect(reason(l, [old.certPem])).toBe('expired');
  });

  it('refuses unreadable input', () => {
    expect(reason('garbage', [root.certPem])).toBe('malformed');
    expect(reason(leaf(root), ['garbage'])).toBe('malformed');
    expect(() => assertChain('garbage', [root.certPem], NOW)).toThrow(
      expect.objectContaining({ code: 'SS_CERT_INVALID', details: { reason: 'malformed' } }),
    );
  });

  it('refuses a certificate issued by a leaf', () => {
    const l = leaf(root);
    const child = issue({
      issuer: { cert: parseCertPem(l), key: parseKeyPem(leafKey) },
      publicKey: parseCertPem(l).publicKey,
      subject: [{ name: 'commonName', value: 'child' }],
      extensions: [],
      now: NOW,
      notAfter: NOW + DAY_MS,
    });
    expect(reason(certToPem(child) + l, [root.certPem])).toBe('not-a-ca');
  });

  describe('through an intermediate limited to a vault', () => {
    let inter: CaMaterial;
    beforeAll(() => {
      inter = createIntermediateCa({
        caCertPem: root.certPem,
        caKeyPem: root.keyPem,
        vault: 'v1',
        commonName: 'v1 intermediate',
        validDays: 30,
        now: NOW,
      });
    });

    it('accepts a leaf of its vault with the intermediate in the bundle', () => {
      expect(verifyChain(leaf(inter) + inter.certPem, [root.certPem], NOW)).toEqual({ ok: true });
      expect(reason(leaf(inter), [root.certPem])).toBe('unknown-ca');
    });

    it('refuses a leaf of another vault', () => {
      const other = hostIdentity('v2', 'hv-a1');
      const csr = createKeyAndCsr({ identity: other }).csrPem;
      const l = leaf(inter, NOW, 2, other, csr);
      expect(reason(l + inter.certPem, [root.certPem])).toBe('name-constraint');
    });

    it('refuses a CA below it (pathLen 0)', () => {
      const sub = createIntermediateCa({
        caCertPem: inter.certPem,
        caKeyPem: inter.keyPem,
        vault: 'v1',
        commonName: 'sub',
        validDays: 10,
        now: NOW,
      });
      const bundle = leaf(sub) + sub.certPem + inter.certPem;
      expect(reason(bundle, [root.certPem])).toBe('not-a-ca');
    });
  });
});
