/**
 * Trust bundles: the CA certificates a peer accepts, as one PEM text that may hold several
 * CAs. During a CA rotation (rotation.ts: prepared → active → old) a bundle holds the old and
 * the new CA, so leaves of either verify (verify.ts takes every CA of the bundle as an anchor;
 * TLS does the same with the PEM as its `ca`); the old CA leaves the bundle once it expires,
 * and its leaves, cut to its lifetime, have expired with it.
 *
 * Certificates are copied as their original PEM blocks, never re-encoded by forge.
 */
import forge from 'node-forge';
import { parseCertPem } from './forge-pki.ts';
import { fingerprintOfPem } from './inspect.ts';

/** Each certificate of a PEM bundle as its own PEM block, in order. */
export function certificatesOf(pem: string): string[] {
  return blocksOf(pem);
}

function blocksOf(pem: string): string[] {
  if (pem.trim() === '') return [];
  return forge.pem
    .decode(pem)
    .filter((b) => b.type === 'CERTIFICATE')
    .map((b) => forge.pem.encode(b).replace(/\r\n/g, '\n'));
}

/** The CAs of `pems`, each once (by fingerprint), in first-seen order. */
export function mergeBundles(...pems: readonly string[]): string {
  const seen = new Set<string>();
  let out = '';
  for (const block of pems.flatMap(blocksOf)) {
    const fp = fingerprintOfPem(block);
    if (seen.has(fp)) continue;
    seen.add(fp);
    out += block;
  }
  return out;
}

/** The bundle without the CAs that have expired at `now` (ms since the epoch). */
export function withoutExpired(bundlePem: string, now: number): string {
  return blocksOf(bundlePem)
    .filter((b) => parseCertPem(b, 'CA').validity.notAfter.getTime() > now)
    .join('');
}
