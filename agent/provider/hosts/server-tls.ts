/**
 * The TLS side of the provider's host endpoint (--listen). The provider signs its own server
 * certificate with its signing CA at every start and again when a CA rotation activates a
 * successor (no key is made: it reuses its client
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
import type { CaPair, StoredIdentity } from '../../common/identity-store.ts';

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
  /** The CA that signs now (provider-ca.ts); default: the stored one. */
  ca: CaPair = { certPem: id.caCertPem, keyPem: id.caKeyPem },
): HostsServerTls {
  const identity = parseIdentity(id.info.identity);
  const wildcard = listenHost === '0.0.0.0' || listenHost === '::';
  const ips = isIP(listenHost) !== 0 && !wildcard ? [listenHost] : [];
  const dns = isIP(listenHost) === 0 ? [listenHost] : [];
  const leaf = signCsr({
    caCertPem: ca.certPem,
    caKeyPem: ca.keyPem,
    csrPem: createCsrForKey({ keyPem: id.clientKeyPem, identity }),
    identity,
    validDays: SERVER_CERT_DAYS,
    now,
    usage: 'server',
    ipAddresses: ips,
    dnsNames: dns,
  });
  return {
    certChainPem: leaf + ca.certPem + id.rootCaPem,
    keyPem: id.clientKeyPem,
    rootCaPem: id.rootCaPem,
  };
}

/**
 * The server's certificate as a grpc-js certificate provider: `update` (a CA rotation
 * activated its successor) makes new handshakes present the new chain; the port stays bound.
 * Listeners are answered asynchronously: grpc-js registers its watcher only after
 * subscribing, and would miss a synchronous first update.
 */
export class HostsServerCertificates implements grpc.experimental.CertificateProvider {
  private readonly caListeners = new Set<grpc.experimental.CaCertificateUpdateListener>();
  private readonly idListeners = new Set<grpc.experimental.IdentityCertificateUpdateListener>();

  constructor(private tls: HostsServerTls) {}

  update(tls: HostsServerTls): void {
    this.tls = tls;
    for (const l of this.caListeners) l(this.ca());
    for (const l of this.idListeners) l(this.identity());
  }

  addCaCertificateListener(l: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(l);
    setImmediate(() => this.caListeners.has(l) && l(this.ca()));
  }

  removeCaCertificateListener(l: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(l);
  }

  addIdentityCertificateListener(l: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.idListeners.add(l);
    setImmediate(() => this.idListeners.has(l) && l(this.identity()));
  }

  removeIdentityCertificateListener(l: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.idListeners.delete(l);
  }

  private ca(): grpc.experimental.CaCertificateUpdate {
    return { caCertificate: Buffer.from(this.tls.rootCaPem) };
  }

  private identity(): grpc.experimental.IdentityCertificateUpdate {
    return {
      certificate: Buffer.from(this.tls.certChainPem),
      privateKey: Buffer.from(this.tls.keyPem),
    };
  }
}

/** Server credentials: our chain, client certificates requested, verified, not required. */
export function hostsServerCredentials(
  tls: HostsServerTls | HostsServerCertificates,
): grpc.ServerCredentials {
  const provider = tls instanceof HostsServerCertificates ? tls : new HostsServerCertificates(tls);
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
}
