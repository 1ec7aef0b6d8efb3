/**
 * The enrolled host's credentials as one renewable thing: a RotatingTls over its identity
 * files (used by the provider link and the renewal's own Renew calls) and the renewer that
 * replaces them at half-life. A renewal also updates the replication port's and senders'
 * material when they read the same files (the default `--tls-dir`, `<data>/identity`); a
 * separate TLS folder belongs to the operator and is left alone. The provider CAs it pins
 * follow the provider's CA rotation (provider-pins.ts); a new trust bundle is installed the
 * same way, without a restart.
 */
import { resolve } from 'node:path';
import { fingerprintOfPem } from '../../../certs/inspect.ts';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Clock } from '../../../common/time/clock.ts';
import type { Logger } from '../../../common/log/log.ts';
import { RotatingTls, type TlsMaterial } from '../transport/rotating-tls.ts';
import { createCertRenewer, type CertRenewer } from './cert-renewer.ts';
import { identityDir, type HostIdentity } from './host-identity.ts';
import { createProviderClient } from './provider-client.ts';
import { ProviderPins } from './provider-pins.ts';

export interface HostCredentials {
  readonly tls: RotatingTls;
  readonly renewer: CertRenewer;
  /** The provider CAs pinned now (provider-pins.ts). */
  readonly pins: ProviderPins;
  /** Pins a provider's trust bundle and installs it (the set_trust_bundle command). */
  trust(bundlePem: string): Promise<void>;
  close(): void;
}

const materialOf = (id: HostIdentity): TlsMaterial => ({
  caPem: id.caPem,
  certPem: id.certPem,
  keyPem: id.keyPem,
});

export function createHostCredentials(a: {
  dataDir: string;
  tlsDir: string;
  identity: HostIdentity;
  /** The replication side's material (host-agent.ts `replication.tls`); absent: none. */
  replicationTls: RotatingTls | undefined;
  clock: Clock;
  log: Logger;
}): HostCredentials {
  const tls = new RotatingTls(materialOf(a.identity));
  const sameFiles = resolve(a.tlsDir) === resolve(identityDir(a.dataDir));
  const pins = new ProviderPins(a.dataDir, a.identity, a.clock);
  const client = createProviderClient({
    target: a.identity.info.provider,
    rootCaPem: a.identity.caPem,
    provider: { vault: a.identity.info.vault, intermediateFingerprint: () => pins.fingerprints() },
    own: tls,
  });
  /** A new bundle for new handshakes; key and certificate stay. */
  const installBundle = (caPem: string): void => {
    tls.update({ ...tls.current(), caPem });
    const rep = a.replicationTls;
    if (sameFiles && rep) rep.update({ ...rep.current(), caPem });
  };
  const renewer = createCertRenewer({
    dataDir: a.dataDir,
    identity: a.identity,
    // The answer's bundle passes the pin rules first: a renewal cannot bring an unpinned CA.
    renew: async (csrPem) => {
      const reply = await client.renew(csrPem);
      await pins.apply(reply.caBundlePem);
      if (!pins.fingerprints().includes(fingerprintOfPem(reply.intermediatePem))) {
        throw new SecondsiteError('SS_CERT_INVALID', 'renewed by a provider CA we do not pin');
      }
      return reply;
    },
    onRenewed: (id) => {
      tls.update(materialOf(id));
      if (sameFiles) a.replicationTls?.update(materialOf(id));
    },
    clock: a.clock,
    log: a.log,
  });
  return {
    tls,
    renewer,
    pins,
    async trust(bundlePem) {
      installBundle(await pins.apply(bundlePem));
    },
    close: () => client.close(),
  };
}
