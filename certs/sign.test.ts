import { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRootCa, type CaMaterial } from './ca.ts';
import { createCsrForKey, createKeyAndCsr, readCsr } from './csr.ts';
import { DAY_MS } from './forge-pki.ts';
import { formatIdentity, hostIdentity, providerIdentity } from './identity.ts';
import { identityFromCertPem } from './inspect.ts';
import { signCsr, type SignCsrOptions } from './sign.ts';

const NOW = Date.UTC(2026, 5, 1);
const ID = hostIdentity('v1', 'hv-a1');
let ca: CaMaterial;
let csrPem: string;

beforeAll(() => {
  ca = createRootCa({ commonName: 'test root', validDays: 30, now: NOW });
  csrPem = createKeyAndCsr({ identity: ID }).csrPem;
});

function sign(over: Partial<SignCsrOptions> = {}): string {
  return signCsr({
    caCertPem: ca.certPem,
    caKeyPem: ca.keyPem,
    csrPem,
    identity: ID,
    validDays: 2,
    now: NOW,
    usage: 'both',
    ...over,
  });
}

/** Swaps bytes of the DER inside a PEM without re-signing. */
function tamper(pem: string, from: string, to: string): string {
  const [block] = forge.pem.decode(pem);
  if (!block || !block.body.includes(from)) throw new Error('nothing to tamper');
  return forge.pem.encode({ ...block, body: block.body.replace(from, to) });
}

describe('CSRs', () => {
  it('carry the identity as a URI SAN in the extension request', () => {
    const read = readCsr(csrPem);
    expect(read.requestedUris).toEqual([formatIdentity(ID)]);
    expect(read.publicKey.n.bitLength()).toBe(2048);
  });

  it('are refused when tampered with', () => {
    const forged = tamper(csrPem, 'hv-a1', 'hv-b1');
    expect(() => readCsr(forged)).toThrow(
      expect.objectContaining({ code: 'SS_CSR_INVALID', details: { reason: 'signature' } }),
    );
    expect(() => sign({ csrPem: forged, identity: hostIdentity('v1', 'hv-b1') })).toThrow(
      expect.objectContaining({ code: 'SS_CSR_INVALID' }),
    );
  });

  it('are refused when unreadable', () => {
    expect(() => readCsr('not a csr')).toThrow(
      expect.objectContaining({ code: 'SS_CSR_INVALID', details: { reason: 'malformed' } }),
    );
  });
});

describe('signCsr', () => {
  it('issues a leaf with the identity, SANs, usages and key identifiers', () => {
    const pem = sign({ dnsNames: ['hv-a1.lab'], ipAddresses: ['10.0.0.5', '::1'] });
    const x = new X509Certificate(pem);
    const root = new X509Certificate(ca.certPem);
    expect(x.checkIssued(root)).toBe(true);
    expect(x.verify(root.publicKey)).toBe(true);
    expect(x.subjectAltName).toBe(
      'URI:secondsite://v1/host/hv-a1, DNS:hv-a1.lab, IP Address:10.0.0.5, IP Address:0:0:0:0:0:0:0:1',
    );
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(x.ca).toBe(false);
    expect(identityFromCertPem(pem)).toEqual(ID);
    const cert = forge.pki.certificateFromPem(pem);
    const root4 = forge.pki.certificateFromPem(ca.certPem);
    const aki = cert.getExtension('authorityKeyIdentifier') as { value: string };
    const ski = root4.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier: string };
    expect(forge.util.bytesToHex(aki.value)).toContain(ski.subjectKeyIdentifier);
  });

  it('sets usages for server or client only', () => {
    expect(new X509Certificate(sign({ usage: 'server' })).keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(new X509Certificate(sign({ usage: 'client' })).keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
  });

  it('uses random positive serials', () => {
    const a = forge.pki.certificateFromPem(sign()).serialNumber;
    const b = forge.pki.certificateFromPem(sign()).serialNumber;
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[0-7][0-9a-f]{31}$/);
  });

  it('backdates notBefore slightly and cuts notAfter to the CA', () => {
    const cert = forge.pki.certificateFromPem(sign({ validDays: 2 }));
    expect(cert.validity.notBefore.getTime()).toBeLessThanOrEqual(NOW);
    expect(cert.validity.notBefore.getTime()).toBeGreaterThan(NOW - DAY_MS);
    expect(cert.validity.notAfter.getTime()).toBe(NOW + 2 * DAY_MS);
    const long = forge.pki.certificateFromPem(sign({ validDays: 3650 }));
    const root = forge.pki.certificateFromPem(ca.certPem);
    expect(long.validity.notAfter.getTime()).toBe(root.validity.notAfter.getTime());
    const exact = forge.pki.certificateFromPem(sign({ notAfter: NOW + 1234_000 }));
    expect(exact.validity.notAfter.getTime()).toBe(NOW + 1234_000);
  });

  it('refuses a CSR asking for another identity than the signer decided', () => {
    const refused = expect.objectContaining({
      code: 'SS_CSR_INVALID',
      details: expect.objectContaining({ reason: 'identity' }),
    });
    expect(() => sign({ identity: hostIdentity('v1', 'hv-a2') })).toThrow(refused);
    expect(() => sign({ identity: hostIdentity('v2', 'hv-a1') })).toThrow(refused);
    expect(() => sign({ identity: providerIdentity('v1', 'hv-a1') })).toThrow(refused);
  });

  it('refuses a CSR asking for no identity', () => {
    const { keyPem } = createKeyAndCsr({ identity: ID });
    const bare = createCsrForKey({ keyPem, subject: [{ name: 'commonName', value: 'x' }] });
    expect(() => sign({ csrPem: bare })).toThrow(
      expect.objectContaining({ code: 'SS_CSR_INVALID' }),
    );
  });

  it('refuses bad SAN values, a mismatched CA key and a CA outside its validity', () => {
    expect(() => sign({ ipAddresses: ['10.0.0.300'] })).toThrow(
      expect.objectContaining({ code: 'SS_BAD_INPUT' }),
    );
    expect(() => sign({ dnsNames: ['a b'] })).toThrow(
      expect.objectContaining({ code: 'SS_BAD_INPUT' }),
    );
    const other = createRootCa({ commonName: 'other', validDays: 30, now: NOW });
    expect(() => sign({ caKeyPem: other.keyPem })).toThrow(
      expect.objectContaining({ code: 'SS_BAD_INPUT' }),
    );
    expect(() => sign({ now: NOW + 31 * DAY_MS })).toThrow(
      expect.objectContaining({ code: 'SS_CERT_INVALID' }),
    );
  });

  it('refuses to sign with a leaf certificate', () => {
    const { keyPem, csrPem: leafCsr } = createKeyAndCsr({ identity: ID });
    const leaf = sign({ csrPem: leafCsr });
    expect(() => sign({ caCertPem: leaf, caKeyPem: keyPem })).toThrow(
      expect.objectContaining({ code: 'SS_CERT_INVALID' }),
    );
  });
});
