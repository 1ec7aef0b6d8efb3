/**
 * Signing CSRs. The signer decides every field of the certificate: the identity (which must
 * equal the one the CSR asked for, so a requester cannot be handed a name it did not expect
 * nor smuggle one in), usages, SANs and lifetime. Requested extensions are never copied.
 */
import { isIP } from 'node:net';
import forge from 'node-forge';
import { badInput, SecondsiteError } from '../common/errors/errors.ts';
import { readCsr, subjectFor } from './csr.ts';
import {
  certToPem,
  keyIdentifierBytes,
  parseCertPem,
  parseKeyPem,
  randomSerial,
  resolveNotAfter,
  SAN_DNS,
  SAN_IP,
  SAN_URI,
  setValidity,
  signSha256,
  type ForgeCert,
  type ForgeKey,
} from './forge-pki.ts';
import { formatIdentity, type Identity } from './identity.ts';

export type CertUsage = 'server' | 'client' | 'both';

export interface Issuer {
  readonly cert: ForgeCert;
  readonly key: ForgeKey;
}

/** Loads a CA for signing: its key must match its certificate and it must be a CA now. */
export function loadIssuer(caCertPem: string, caKeyPem: string, now: number): Issuer {
  const cert = parseCertPem(caCertPem, 'CA certificate');
  const key = parseKeyPem(caKeyPem);
  const pub = cert.publicKey as forge.pki.rsa.PublicKey;
  if (pub.n.compareTo(key.n) !== 0) {
    throw badInput('caKey', 'does not belong to the CA certificate');
  }
  const bc = cert.getExtension('basicConstraints') as { cA?: boolean } | undefined;
  if (!bc?.cA) throw new SecondsiteError('SS_CERT_INVALID', 'CA certificate is not a CA');
  if (now < cert.validity.notBefore.getTime() || now >= cert.validity.notAfter.getTime()) {
    throw new SecondsiteError('SS_CERT_INVALID', 'CA certificate is not valid now', {
      notBefore: cert.validity.notBefore.toISOString(),
      notAfter: cert.validity.notAfter.toISOString(),
    });
  }
  return { cert, key };
}

/**
 * Builds and signs a certificate for `publicKey`. Its lifetime is cut to the issuer's: a
 * certificate that outlives its CA would fail verification anyway, later and less clearly.
 */
export function issue(opts: {
  issuer: Issuer;
  publicKey: forge.pki.PublicKey;
  subject: forge.pki.CertificateField[];
  extensions: object[];
  now: number;
  notAfter: number;
}): ForgeCert {
  const cert = forge.pki.createCertificate();
  cert.publicKey = opts.publicKey;
  cert.serialNumber = randomSerial();
  const caEnd = opts.issuer.cert.validity.notAfter.getTime();
  setValidity(cert, opts.now, Math.min(opts.notAfter, caEnd));
  cert.setSubject(opts.subject);
  cert.setIssuer(opts.issuer.cert.subject.attributes);
  cert.setExtensions([
    ...opts.extensions,
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: keyIdentifierBytes(opts.issuer.cert) },
  ]);
  signSha256(cert, opts.issuer.key);
  return cert;
}

function extKeyUsage(usage: CertUsage): object {
  return {
    name: 'extKeyUsage',
    serverAuth: usage === 'server' || usage === 'both',
    clientAuth: usage === 'client' || usage === 'both',
  };
}

function altNames(
  identity: Identity,
  dnsNames: readonly string[],
  ips: readonly string[],
): object[] {
  for (const d of dnsNames) {
    if (!/^(?:\*\.)?[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/i.test(d)) {
      throw badInput('dnsNames', `not a DNS name: ${JSON.stringify(d.slice(0, 100))}`);
    }
  }
  for (const ip of ips) {
    if (isIP(ip) === 0) throw badInput('ipAddresses', `not an IP address: ${JSON.stringify(ip)}`);
  }
  return [
    { type: SAN_URI, value: formatIdentity(identity) },
    ...dnsNames.map((value) => ({ type: SAN_DNS, value })),
    ...ips.map((ip) => ({ type: SAN_IP, ip })),
  ];
}

/**
 * The CSR must ask for exactly the identity the signer decided. A CSR asking for none is
 * refused too: ours always ask, so a bare one came from somewhere else.
 */
export function assertCsrAsksFor(requestedUris: readonly string[], identity: Identity): void {
  const want = formatIdentity(identity);
  if (requestedUris.length !== 1 || requestedUris[0] !== want) {
    throw new SecondsiteError('SS_CSR_INVALID', 'CSR does not ask for the expected identity', {
      reason: 'identity',
      expected: want,
      requested: requestedUris.slice(0, 4),
    });
  }
}

export interface SignCsrOptions {
  readonly caCertPem: string;
  readonly caKeyPem: string;
  readonly csrPem: string;
  /** The identity the signer decided (from the token or registration it checked). */
  readonly identity: Identity;
  readonly validDays?: number;
  /** ms since the epoch; wins over validDays. */
  readonly notAfter?: number;
  /** ms since the epoch. */
  readonly now: number;
  readonly usage: CertUsage;
  /** DNS SANs for TLS hostname checks by clients that dial by name. */
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

/** Verifies the CSR and signs a leaf certificate for `identity`; returns the leaf PEM. */
export function signCsr(opts: SignCsrOptions): string {
  const csr = readCsr(opts.csrPem);
  assertCsrAsksFor(csr.requestedUris, opts.identity);
  const issuer = loadIssuer(opts.caCertPem, opts.caKeyPem, opts.now);
  const cert = issue({
    issuer,
    publicKey: csr.publicKey,
    subject: subjectFor(opts.identity),
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      extKeyUsage(opts.usage),
      {
        name: 'subjectAltName',
        altNames: altNames(opts.identity, opts.dnsNames ?? [], opts.ipAddresses ?? []),
      },
    ],
    now: opts.now,
    notAfter: resolveNotAfter(opts, opts.now),
  });
  return certToPem(cert);
}
