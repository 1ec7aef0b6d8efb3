import { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { beforeAll, describe, expect, it } from 'vitest';
import { createIntermediateCa, createRootCa, signIntermediateCsr, type CaMaterial } from './ca.ts';
import { createKeyAndCsr } from './csr.ts';
import { DAY_MS } from './forge-pki.ts';
import { hostIdentity, providerIdentity } from './identity.ts';
import { identityFromCertPem } from './inspect.ts';

const NOW = Date.UTC(2026, 5, 1);
let root: CaMaterial;

beforeAll(() => {
  root = createRootCa({ commonName: 'secondsite coordinator CA', validDays: 3650, now: NOW });
});

describe('createRootCa', () => {
  it('makes a self-signed CA that can sign certificates and CRLs', () => {
    const x = new X509Certificate(root.certPem);
    expect(x.ca).toBe(true);
    expect(x.subject).toBe('CN=secondsite coordinator CA');
    expect(x.verify(x.publicKey)).toBe(true);
    const cert = forge.pki.certificateFromPem(root.certPem);
    expect(cert.getExtension('basicConstraints')).toMatchObject({ cA: true, critical: true });
    expect(cert.getExtension('keyUsage')).toMatchObject({
      keyCertSign: true,
      cRLSign: true,
      digitalSignature: false,
      critical: true,
    });
    expect(cert.verifySubjectKeyIdentifier()).toBe(true);
    expect(cert.validity.notAfter.getTime()).toBe(NOW + 3650 * DAY_MS);
  });

  it('writes the key as PKCS#8 PEM', () => {
    expect(root.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('refuses a lifetime that ends before now', () => {
    expect(() => createRootCa({ commonName: 'x', notAfter: NOW - 1, now: NOW })).toThrow(
      expect.objectContaining({ code: 'SS_BAD_INPUT' }),
    );
    expect(() => createRootCa({ commonName: 'x', now: NOW })).toThrow(
      expect.objectContaining({ code: 'SS_BAD_INPUT' }),
    );
  });
});

describe('intermediate CA', () => {
  it('is limited to its vault and to signing leaves', () => {
    const inter = createIntermediateCa({
      caCertPem: root.certPem,
      caKeyPem: root.keyPem,
      vault: 'v1',
      commonName: 'v1 intermediate',
      validDays: 30,
      now: NOW,
    });
    const cert = forge.pki.certificateFromPem(inter.certPem);
    expect(cert.getExtension('basicConstraints')).toMatchObject({
      cA: true,
      pathLenConstraint: 0,
    });
    const nc = cert.extensions.find((e: { id: string }) => e.id === '2.5.29.30');
    expect(nc).toMatchObject({ critical: true });
    expect(new X509Certificate(inter.certPem).checkIssued(new X509Certificate(root.certPem))).toBe(
      true,
    );
  });

  it('signs a provider CSR bound to the provider identity, keeping its key remote', () => {
    const id = providerIdentity('v1', 'vmm01');
    const { csrPem } = createKeyAndCsr({ identity: id });
    const pem = signIntermediateCsr({
      caCertPem: root.certPem,
      caKeyPem: root.keyPem,
      csrPem,
      vault: 'v1',
      identity: id,
      commonName: 'vmm01 CA',
      validDays: 30,
      now: NOW,
    });
    expect(identityFromCertPem(pem)).toEqual(id);
  });

  it('refuses an identity of another vault or another name', () => {
    const id = providerIdentity('v1', 'vmm01');
    const { csrPem } = createKeyAndCsr({ identity: id });
    const base = {
      caCertPem: root.certPem,
      caKeyPem: root.keyPem,
      csrPem,
      commonName: 'x',
      validDays: 30,
      now: NOW,
    };
    expect(() => signIntermediateCsr({ ...base, vault: 'v2', identity: id })).toThrow(
      expect.objectContaining({ code: 'SS_BAD_INPUT' }),
    );
    expect(() =>
      signIntermediateCsr({ ...base, vault: 'v1', identity: hostIdentity('v1', 'vmm01') }),
    ).toThrow(expect.objectContaining({ code: 'SS_CSR_INVALID' }));
    expect(() => signIntermediateCsr({ ...base, vault: 'V1' })).toThrow(
      expect.objectContaining({ code: 'SS_BAD_INPUT' }),
    );
  });
});
