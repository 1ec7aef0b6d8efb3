/**
 * What a host needs to know about a provider CA certificate to decide whether it may pin it
 * (agent/host/domain/provider-pin.ts decides; this file only reads): its fingerprint,
 * validity, CA limits, the vaults its name constraints permit, the identity URI SAN the
 * coordinator put in it, and whether it chains to the trust anchors given.
 */
import { altNamesOf, parseCertPem, SAN_URI } from './forge-pki.ts';
import { fingerprintOfPem } from './inspect.ts';
import { permittedVaultsOf, verifyChain, type ChainFailure } from './verify.ts';

export interface CaFacts {
  readonly fingerprint: string;
  /** ms since the epoch */
  readonly notBefore: number;
  readonly notAfter: number;
  readonly isCa: boolean;
  /** undefined when the CA sets no path length limit. */
  readonly pathLen: number | undefined;
  readonly keyCertSign: boolean;
  /** Vaults its URI name constraints permit; undefined when it has none, null when unreadable. */
  readonly permittedVaults: readonly string[] | undefined | null;
  /** Its URI SANs (the coordinator names the provider it belongs to). */
  readonly uris: readonly string[];
  /** The result of verifying it up to `anchors` at `now`: 'ok' or why not. */
  readonly chain: 'ok' | ChainFailure;
}

export function caFacts(caPem: string, anchors: readonly string[], now: number): CaFacts {
  const cert = parseCertPem(caPem, 'CA certificate');
  const bc = cert.getExtension('basicConstraints') as
    { cA?: boolean; pathLenConstraint?: number } | undefined;
  const ku = cert.getExtension('keyUsage') as { keyCertSign?: boolean } | undefined;
  let permittedVaults: readonly string[] | undefined | null;
  try {
    permittedVaults = permittedVaultsOf(cert);
  } catch {
    permittedVaults = null;
  }
  const verified = verifyChain(caPem, anchors, now);
  return {
    fingerprint: fingerprintOfPem(caPem),
    notBefore: cert.validity.notBefore.getTime(),
    notAfter: cert.validity.notAfter.getTime(),
    isCa: bc?.cA === true,
    pathLen: bc?.pathLenConstraint,
    keyCertSign: ku?.keyCertSign === true,
    permittedVaults,
    uris: altNamesOf(cert)
      .filter((a) => a.type === SAN_URI)
      .map((a) => a.value),
    chain: verified.ok ? 'ok' : verified.reason,
  };
}
