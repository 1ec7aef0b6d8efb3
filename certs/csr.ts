/**
 * Keys are made where they live and only CSRs travel (ARCHITECTURE.md, Trust): a provider or
 * host makes its key pair locally, keeps the key on disk (0600), and sends only the CSR, which
 * asks for its identity as a URI SAN. The signer reads the CSR back with `readCsr`, which
 * checks the self-signature (proof the requester holds the key) before anything else.
 */
import forge from 'node-forge';
import { SecondsiteError } from '../common/errors/errors.ts';
import { formatIdentity, type Identity } from './identity.ts';
import {
  generateKeyPem,
  MIN_RSA_BITS,
  parseKeyPem,
  publicKeyOf,
  SAN_DNS,
  SAN_IP,
  SAN_URI,
} from './forge-pki.ts';

export interface KeyAndCsr {
  /** PKCS#8 PEM; write it with writeSecretFile and never send it anywhere. */
  readonly keyPem: string;
  readonly csrPem: string;
}

/** Subject fields are informational; the identity that counts is the URI SAN. */
export function subjectFor(identity: Identity): forge.pki.CertificateField[] {
  const cn = identity.kind === 'coordinator' ? 'coordinator' : `${identity.kind} ${identity.name}`;
  return [
    { name: 'commonName', value: cn },
    { name: 'organizationName', value: `secondsite vault ${identity.vault}` },
  ];
}

/** Makes a new key pair and a CSR for `identity` signed by it. */
export function createKeyAndCsr(opts: { identity: Identity }): KeyAndCsr {
  const keyPem = generateKeyPem();
  return { keyPem, csrPem: createCsrForKey({ keyPem, identity: opts.identity }) };
}

/**
 * A CSR for an existing key (e.g. a renewal that keeps the key). Without an identity it asks
 * for no SAN (an intermediate CA without a holder identity) and needs an explicit subject.
 */
export function createCsrForKey(opts: {
  keyPem: string;
  identity?: Identity;
  subject?: forge.pki.CertificateField[];
}): string {
  const key = parseKeyPem(opts.keyPem);
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = publicKeyOf(key);
  const subject = opts.subject ?? (opts.identity ? subjectFor(opts.identity) : undefined);
  if (!subject) throw new SecondsiteError('SS_BAD_INPUT', 'subject: give an identity or a subject');
  csr.setSubject(subject);
  if (opts.identity) {
    const uri = formatIdentity(opts.identity);
    csr.setAttributes([
      {
        name: 'extensionRequest',
        extensions: [{ name: 'subjectAltName', altNames: [{ type: SAN_URI, value: uri }] }],
      },
    ]);
  }
  csr.sign(key, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

export interface ReadCsr {
  readonly publicKey: forge.pki.rsa.PublicKey;
  readonly subject: forge.pki.CertificateField[];
  /** URI SANs the requester asked for; the signer decides, these are only compared. */
  readonly requestedUris: readonly string[];
  readonly requestedDnsNames: readonly string[];
  readonly requestedIps: readonly string[];
}

/** Why a CSR was refused, in `details.reason`, for callers and tests that must tell apart. */
export type CsrRefusal = 'malformed' | 'signature' | 'weak-key' | 'identity';

function csrInvalid(reason: CsrRefusal, message: string, cause?: unknown): SecondsiteError {
  return new SecondsiteError('SS_CSR_INVALID', message, { reason }, cause ? { cause } : undefined);
}

function requestedAltNames(csr: forge.pki.CertificateSigningRequest): {
  type: number;
  value: string;
  ip?: string;
}[] {
  const req = csr.getAttribute({ name: 'extensionRequest' }) as {
    extensions?: { name?: string; altNames?: { type: number; value: string; ip?: string }[] }[];
  } | null;
  const san = req?.extensions?.find((e) => e.name === 'subjectAltName');
  return san?.altNames ?? [];
}

/** Parses a CSR and checks its self-signature and key size; throws SS_CSR_INVALID. */
export function readCsr(csrPem: string): ReadCsr {
  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem);
  } catch (cause) {
    throw csrInvalid('malformed', 'CSR is not a readable PEM RSA certification request', cause);
  }
  let signed: boolean;
  try {
    signed = csr.verify();
  } catch (cause) {
    throw csrInvalid('signature', 'CSR signature could not be checked', cause);
  }
  if (!signed || !csr.publicKey)
    throw csrInvalid('signature', 'CSR signature does not match its key');
  const publicKey = csr.publicKey as forge.pki.rsa.PublicKey;
  if (publicKey.n.bitLength() < MIN_RSA_BITS) {
    throw csrInvalid('weak-key', `CSR key is shorter than ${MIN_RSA_BITS} bits`);
  }
  const alt = requestedAltNames(csr);
  return {
    publicKey,
    subject: csr.subject.attributes,
    requestedUris: alt.filter((a) => a.type === SAN_URI).map((a) => a.value),
    requestedDnsNames: alt.filter((a) => a.type === SAN_DNS).map((a) => a.value),
    requestedIps: alt.filter((a) => a.type === SAN_IP).map((a) => a.ip ?? a.value),
  };
}
