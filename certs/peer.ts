/**
 * Reading the caller from the peer certificate that TLS already verified (gRPC handlers get it
 * from `call.getAuthContext().sslPeerCertificate`). No forge here: Node has parsed the
 * certificate, and re-parsing it would only add a second parser to disagree with the first.
 *
 * TLS checks validity only at the handshake, and a connection can outlive its certificate
 * (LAB.md, gRPC), so handlers also call `assertPeerCertificateCurrent` on every call.
 */
import type { PeerCertificate } from 'node:tls';
import { SecondsiteError } from '../common/errors/errors.ts';
import { fingerprintOfDer } from './fingerprint.ts';
import { formatIdentity, identityFromUris, sameIdentity, type Identity } from './identity.ts';

export interface SubjectAltName {
  readonly type: string;
  readonly value: string;
}

/**
 * Splits Node's `subjectaltname` text ("DNS:a, URI:secondsite://v/host/h, IP Address:1.2.3.4").
 * Node writes a value that contains a separator or a quote as a JSON string literal
 * (CVE-2021-44532), so a DNS name like `x, URI:secondsite://…` cannot pose as a second entry:
 * quoted values are decoded as JSON, never split.
 */
export function parseSubjectAltName(text: string): SubjectAltName[] {
  const out: SubjectAltName[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) throw malformed(text);
    const type = text.slice(i, colon);
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      end = closingQuote(text, colon + 1);
      value = JSON.parse(text.slice(colon + 1, end + 1)) as string;
      end += 1;
    } else {
      const sep = text.indexOf(', ', colon + 1);
      end = sep < 0 ? text.length : sep;
      value = text.slice(colon + 1, end);
    }
    out.push({ type, value });
    if (end < text.length && text.slice(end, end + 2) !== ', ') throw malformed(text);
    i = end + 2;
  }
  return out;
}

function closingQuote(text: string, open: number): number {
  for (let j = open + 1; j < text.length; j++) {
    if (text[j] === '\\') j++;
    else if (text[j] === '"') return j;
  }
  throw malformed(text);
}

function malformed(text: string): SecondsiteError {
  return new SecondsiteError('SS_CERT_INVALID', 'peer certificate subjectAltName is malformed', {
    subjectAltName: text.slice(0, 200),
  });
}

function requirePeer(peer: PeerCertificate | undefined | null): PeerCertificate {
  // Node gives `{}` rather than undefined when the peer sent no certificate.
  if (!peer || !peer.raw) {
    throw new SecondsiteError('SS_UNAUTHENTICATED', 'the peer presented no certificate');
  }
  return peer;
}

/** The caller's identity from its verified certificate's single secondsite URI SAN. */
export function identityFromPeerCertificate(peer: PeerCertificate | undefined | null): Identity {
  const p = requirePeer(peer);
  const sans = parseSubjectAltName(p.subjectaltname ?? '');
  return identityFromUris(sans.filter((s) => s.type === 'URI').map((s) => s.value));
}

/** SHA-256 of the peer certificate's DER, in the same format as `fingerprintOfPem`. */
export function fingerprintOfPeerCertificate(peer: PeerCertificate | undefined | null): string {
  return fingerprintOfDer(requirePeer(peer).raw);
}

/** Throws SS_CERT_INVALID when the peer certificate is outside its validity at `now` (ms). */
export function assertPeerCertificateCurrent(
  peer: PeerCertificate | undefined | null,
  now: number,
): void {
  const p = requirePeer(peer);
  const notBefore = Date.parse(p.valid_from);
  const notAfter = Date.parse(p.valid_to);
  if (Number.isNaN(notBefore) || Number.isNaN(notAfter)) {
    throw new SecondsiteError('SS_CERT_INVALID', 'peer certificate validity is unreadable');
  }
  if (now < notBefore || now > notAfter) {
    throw new SecondsiteError(
      'SS_CERT_INVALID',
      now > notAfter ? 'peer certificate has expired' : 'peer certificate is not yet valid',
      { notBefore: new Date(notBefore).toISOString(), notAfter: new Date(notAfter).toISOString() },
    );
  }
}

/**
 * A TLS `checkServerIdentity` that accepts the server by its identity URI SAN instead of the
 * host name dialled: peers are found by address, but trusted by name. Pass it to grpc-js
 * `credentials.createSsl(ca, key, cert, { checkServerIdentity })`. The chain has already been
 * verified against the CA when this runs.
 */
export function checkServerIdentityFor(
  expected: Identity,
): (hostname: string, cert: PeerCertificate) => Error | undefined {
  const want = formatIdentity(expected);
  return (_hostname, cert) => {
    try {
      const got = identityFromPeerCertificate(cert);
      if (sameIdentity(got, expected)) return undefined;
      return new SecondsiteError('SS_CERT_INVALID', 'server identity is not the expected one', {
        expected: want,
        actual: formatIdentity(got),
      });
    } catch (e) {
      return e instanceof Error ? e : new Error(String(e));
    }
  };
}

/** A DER certificate as PEM (Node's PeerCertificate carries DER in `raw`). */
export function pemOfDer(der: Buffer): string {
  const b64 =
    der
      .toString('base64')
      .match(/.{1,64}/g)
      ?.join('\n') ?? '';
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/**
 * The certificates a TLS peer presented, leaf first, from getPeerCertificate(true) (Node links
 * them through issuerCertificate; a self-signed root links to itself, hence the repeat check).
 * At most 6: no honest chain of ours is longer.
 */
export function presentedChain(leaf: PeerCertificate): PeerCertificate[] {
  const chain: PeerCertificate[] = [];
  let c: PeerCertificate | undefined = leaf;
  while (c?.raw !== undefined && !chain.some((x) => x.raw.equals(c!.raw)) && chain.length < 6) {
    chain.push(c);
    c = (c as { issuerCertificate?: PeerCertificate }).issuerCertificate;
  }
  return chain;
}
