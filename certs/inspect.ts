/** Reading facts out of PEM certificates: identity, fingerprint (see fingerprint.ts), validity. */
import forge from 'node-forge';
import { SecondsiteError } from '../common/errors/errors.ts';
import { altNamesOf, parseCertBundle, parseCertPem, SAN_URI } from './forge-pki.ts';
import { fingerprintOfDer, fingerprintsEqual, parseFingerprint } from './fingerprint.ts';
import { identityFromUris, type Identity } from './identity.ts';

/** The identity in the (first) certificate's single secondsite URI SAN. */
export function identityFromCertPem(certPem: string): Identity {
  const cert = parseCertPem(certPem);
  return identityFromUris(
    altNamesOf(cert)
      .filter((a) => a.type === SAN_URI)
      .map((a) => a.value),
  );
}

/**
 * SHA-256 of the first certificate's DER, as 64 lowercase hex digits. The DER is the PEM body
 * itself, not a re-encoding, so the result equals what Node and OpenSSL print.
 */
export function fingerprintOfPem(certPem: string): string {
  parseCertBundle(certPem);
  const block = forge.pem.decode(certPem).find((b) => b.type === 'CERTIFICATE');
  if (!block) throw new SecondsiteError('SS_CERT_INVALID', 'no certificate to fingerprint');
  return fingerprintOfDer(Buffer.from(block.body, 'binary'));
}

/** Throws SS_FINGERPRINT_MISMATCH unless the CA certificate has the pinned fingerprint. */
export function assertFingerprint(certPem: string, pinned: string): void {
  const actual = fingerprintOfPem(certPem);
  if (!fingerprintsEqual(actual, pinned)) {
    throw new SecondsiteError(
      'SS_FINGERPRINT_MISMATCH',
      'CA certificate fingerprint differs from the pinned one',
      {
        expected: parseFingerprint(pinned),
        actual,
      },
    );
  }
}

export interface CertFacts {
  /** ms since the epoch */
  readonly notBefore: number;
  readonly notAfter: number;
  readonly serialNumber: string;
  readonly isCa: boolean;
  readonly subjectCommonName: string | undefined;
}

export function certFacts(certPem: string): CertFacts {
  const cert = parseCertPem(certPem);
  const bc = cert.getExtension('basicConstraints') as { cA?: boolean } | undefined;
  const cn = cert.subject.getField('CN') as { value?: string } | null;
  return {
    notBefore: cert.validity.notBefore.getTime(),
    notAfter: cert.validity.notAfter.getTime(),
    serialNumber: cert.serialNumber,
    isCa: bc?.cA === true,
    subjectCommonName: cn?.value,
  };
}
