/**
 * The TLS side of the provider's host endpoint (--listen). The provider signs its own server
 * certificate with its intermediate CA at every start (no key is made: it reuses its client
 * key), and serves the chain leaf + intermediate + vault root, so a joining host can find the
 * intermediate its token pins and verify the leaf up to the root.
 *
 * Client certificates are asked for but not required: an enrolling host has none yet (Enrol
 * is authenticated by the token's secret), while Connect reads the caller from the verified
 * certificate. grpc-js exposes a peer certificate to handlers only when TLS verified it
 * against the vault root, so an unverified one is the same as none.
 */
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { createCsrForKey } from '../../../certs/csr.ts';
import { parseIdentity } from '../../../certs/identity.ts';
import { signCsr } from '../../../certs/sign.ts';
import type { StoredIdentity } from '../../common/identity-store.ts';

/** Re-signed at every start, so its lifetime only has to outlast one run. */
const SERVER_CERT_DAYS = 90;

export interface HostsServerTls {
  /** Leaf, then the provider's intermediate, then the vault root. */
  readonly certChainPem: string;
  readonly keyPem: string;
  /** The trust anchor for host client certificates. */
  readonly rootCaPem: string;
}

export function hostsServerTls(
  id: StoredIdentity,
  listenHost: string,
  now: number,
): HostsServerTls {
  const identity = parseIdentity(id.info.identity);
  const wildcard = listenHost === '0.0.0.0' || listenHost === '::';
  const ips = isIP(listenHost) !== 0 && !wildcard ? [listenHost] : [];
  const dns = isIP(listenHost) === 0 ? [listenHost] : [];
  const leaf = signCsr({
    caCertPem: id.caCertPem,
    caKeyPem: id.caKeyPem,
    csrPem: createCsrForKey({ keyPem: id.clientKeyPem, identity }),
    identity,
    validDays: SERVER_CERT_DAYS,
    now,
    usage: 'server',
    ipAddresses: ips,
    dnsNames: dns,
  });
  return {
    certChainPem: leaf + id.caCertPem + id.rootCaPem,
    keyPem: id.clientKeyPem,
    rootCaPem: id.rootCaPem,
  };
}

/**
 * A certificate provider that never changes. It answers listeners asynchronously: grpc-js
 * registers its watcher only after subscribing, and would miss a synchronous first update.
 */
function staticProvider(tls: HostsServerTls): grpc.experimental.CertificateProvider {
  const ca = { caCertificate: Buffer.from(tls.rootCaPem) };
  const identity = {
    certificate: Buffer.from(tls.certChainPem),
    privateKey: Buffer.from(tls.keyPem),
  };
  return {
    addCaCertificateListener: (l) => void setImmediate(() => l(ca)),
    removeCaCertificateListener: () => undefined,
    addIdentityCertificateListener: (l) => void setImmediate(() => l(identity)),
    removeIdentityCertificateListener: () => undefined,
  };
}

/** Server credentials: our chain, client certificates requested, verified, not required. */
export function hostsServerCredentials(tls: HostsServerTls): grpc.ServerCredentials {
  const provider = staticProvider(tls);
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
}
