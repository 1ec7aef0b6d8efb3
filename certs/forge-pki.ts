/**
 * Shared node-forge plumbing for the certs module: key generation, PEM parsing with typed
 * errors, serials, validity windows and the extension shapes forge expects.
 *
 * Key choice, by measurement (Node 20, node-forge 1.4.3): forge 1.x cannot hold EC keys (no
 * P-256 CSRs or certificates), so keys are RSA-2048. They are generated natively by
 * `node:crypto` (measured 0.1-0.2 s each; forge's pure-JS generator takes a second or more,
 * and forge only delegates to Node when it detects it, so we call Node ourselves) and handed
 * to forge as PEM. forge builds and signs CSRs and certificates (measured ~22 ms per RSA-2048
 * signature) and verifies them (<1 ms). Keys are PKCS#8 PEM, read by OpenSSL (so grpc-js)
 * and by forge alike.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { SecondsiteError } from '../common/errors/errors.ts';

export const RSA_BITS = 2048;
/** Smallest RSA modulus a CSR may carry; weaker keys are refused rather than certified. */
export const MIN_RSA_BITS = 2048;
/**
 * Certificates start this much before `now` so that a peer whose clock runs behind accepts
 * them at once; 5 minutes matches the clock skew the ticket service tolerates.
 */
export const BACKDATE_MS = 5 * 60 * 1000;
export const DAY_MS = 24 * 60 * 60 * 1000;

export type ForgeCert = forge.pki.Certificate;
export type ForgeKey = forge.pki.rsa.PrivateKey;

/** A fresh RSA key pair as PKCS#8 PEM, made natively (see the file comment for why). */
export function generateKeyPem(): string {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: RSA_BITS,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return privateKey;
}

export function parseCertPem(pem: string, what = 'certificate'): ForgeCert {
  try {
    return forge.pki.certificateFromPem(pem);
  } catch (cause) {
    throw new SecondsiteError(
      'SS_CERT_INVALID',
      `${what} is not a readable PEM certificate`,
      {},
      {
        cause,
      },
    );
  }
}

/** Every certificate in a PEM bundle, in order. */
export function parseCertBundle(pem: string, what = 'certificate'): ForgeCert[] {
  let blocks: forge.pem.ObjectPEM[];
  try {
    blocks = forge.pem.decode(pem).filter((b) => b.type === 'CERTIFICATE');
  } catch (cause) {
    throw new SecondsiteError('SS_CERT_INVALID', `${what} is not readable PEM`, {}, { cause });
  }
  if (blocks.length === 0) {
    throw new SecondsiteError('SS_CERT_INVALID', `${what} holds no PEM certificate`);
  }
  return blocks.map((b) => parseCertPem(forge.pem.encode(b), what));
}

export function parseKeyPem(pem: string): ForgeKey {
  try {
    return forge.pki.privateKeyFromPem(pem) as ForgeKey;
  } catch (cause) {
    throw new SecondsiteError(
      'SS_BAD_INPUT',
      'key: not a readable RSA private key PEM',
      {
        field: 'key',
      },
      { cause },
    );
  }
}

export function publicKeyOf(key: ForgeKey): forge.pki.rsa.PublicKey {
  return forge.pki.setRsaPublicKey(key.n, key.e);
}

/**
 * 16 random bytes with the top bit cleared: serials must be positive and at most 20 octets
 * (RFC 5280 4.1.2.2), and 127 random bits make collisions and guessing moot.
 */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

/** Sets notBefore (backdated) and notAfter, in ms since the epoch. */
export function setValidity(cert: ForgeCert, now: number, notAfter: number): void {
  if (!(notAfter > now)) {
    throw new SecondsiteError('SS_BAD_INPUT', 'notAfter: must be later than now', {
      field: 'notAfter',
    });
  }
  cert.validity.notBefore = new Date(now - BACKDATE_MS);
  cert.validity.notAfter = new Date(notAfter);
}

/** notAfter from either an explicit time or a number of days from now. */
export function resolveNotAfter(
  opts: { validDays?: number; notAfter?: number },
  now: number,
): number {
  if (opts.notAfter !== undefined) return opts.notAfter;
  if (opts.validDays === undefined || !(opts.validDays > 0)) {
    throw new SecondsiteError('SS_BAD_INPUT', 'validDays: give a positive validDays or notAfter', {
      field: 'validDays',
    });
  }
  return now + opts.validDays * DAY_MS;
}

/** The issuer's key identifier: its SKI extension if present, else computed like forge does. */
export function keyIdentifierBytes(cert: ForgeCert): string {
  const ski = cert.getExtension('subjectKeyIdentifier') as
    { subjectKeyIdentifier?: string } | undefined;
  if (ski?.subjectKeyIdentifier) return forge.util.hexToBytes(ski.subjectKeyIdentifier);
  return cert.generateSubjectKeyIdentifier().getBytes();
}

export function signSha256(cert: ForgeCert, key: ForgeKey): void {
  cert.sign(key, forge.md.sha256.create());
}

export function certToPem(cert: ForgeCert): string {
  return forge.pki.certificateToPem(cert);
}

/** The alt names of a certificate's subjectAltName extension, as forge reads them. */
export function altNamesOf(cert: ForgeCert): { type: number; value: string; ip?: string }[] {
  const ext = cert.getExtension('subjectAltName') as
    { altNames?: { type: number; value: string; ip?: string }[] } | undefined;
  return ext?.altNames ?? [];
}

export const SAN_DNS = 2;
export const SAN_URI = 6;
export const SAN_IP = 7;
export const NAME_CONSTRAINTS_OID = '2.5.29.30';
