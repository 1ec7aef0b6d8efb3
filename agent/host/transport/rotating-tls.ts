/**
 * The host's TLS material as a grpc-js certificate provider, so the replication port (8084)
 * and the host's clients take a renewed certificate (or a new trust bundle) without a restart.
 *
 * What changes and what does not when `update` is called:
 *  - the listening socket stays bound (same port); Node's `setSecureContext` makes every NEW
 *    handshake use the new certificate and CA bundle;
 *  - connections already open keep the certificate they were made with (TLS cannot re-key a
 *    connection's identity); they live on until they close, and the per-call validity check
 *    (agent/common/caller.ts) ends them if the old certificate expires first;
 *  - clients build a secure context per connection from the latest material, so reconnects
 *    present the new certificate.
 *
 * Listeners are answered asynchronously on subscription: grpc-js registers its watcher only
 * after subscribing and would miss a synchronous first update (as in provider server-tls.ts).
 *
 * States: one current material, replaced whole by `update` (never a mix of key and cert).
 */
import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';

export interface TlsMaterial {
  /** PEM of the trust bundle: one or more CAs (a rotation overlap holds old and new). */
  readonly caPem: string;
  /** PEM of this host's certificate, followed by any intermediates. */
  readonly certPem: string;
  readonly keyPem: string;
}

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdListener = grpc.experimental.IdentityCertificateUpdateListener;

export class RotatingTls implements grpc.experimental.CertificateProvider {
  private material: TlsMaterial;
  private readonly caListeners = new Set<CaListener>();
  private readonly idListeners = new Set<IdListener>();

  constructor(initial: TlsMaterial) {
    this.material = initial;
  }

  current(): TlsMaterial {
    return this.material;
  }

  /** Replaces key, chain and CA bundle at once; new handshakes use them from now on. */
  update(next: TlsMaterial): void {
    this.material = next;
    for (const l of this.caListeners) l(this.caUpdate());
    for (const l of this.idListeners) l(this.idUpdate());
  }

  addCaCertificateListener(l: CaListener): void {
    this.caListeners.add(l);
    setImmediate(() => this.caListeners.has(l) && l(this.caUpdate()));
  }

  removeCaCertificateListener(l: CaListener): void {
    this.caListeners.delete(l);
  }

  addIdentityCertificateListener(l: IdListener): void {
    this.idListeners.add(l);
    setImmediate(() => this.idListeners.has(l) && l(this.idUpdate()));
  }

  removeIdentityCertificateListener(l: IdListener): void {
    this.idListeners.delete(l);
  }

  /** Server credentials that demand and verify a client certificate against the bundle. */
  serverCredentials(): grpc.ServerCredentials {
    // grpc-js 1.14 hands its two provider arguments to the constructor in swapped order;
    // passing this object for both makes the order irrelevant.
    return grpc.experimental.createCertificateProviderServerCredentials(this, this, true);
  }

  /** Mutual TLS client credentials; `checkServerIdentity` checks the server's identity. */
  channelCredentials(
    checkServerIdentity: (hostname: string, cert: PeerCertificate) => Error | undefined,
  ): grpc.ChannelCredentials {
    return grpc.experimental.createCertificateProviderChannelCredentials(this, this, {
      checkServerIdentity,
    });
  }

  private caUpdate(): grpc.experimental.CaCertificateUpdate {
    return { caCertificate: Buffer.from(this.material.caPem) };
  }

  private idUpdate(): grpc.experimental.IdentityCertificateUpdate {
    return {
      certificate: Buffer.from(this.material.certPem),
      privateKey: Buffer.from(this.material.keyPem),
    };
  }
}

/** Either fixed material or a rotating source, as the replication server and clients accept. */
export type TlsSource = TlsMaterial | RotatingTls;
