/**
 * The enrolled host's credentials as one renewable thing: a RotatingTls over its identity
 * files (used by the provider link and the renewal's own Renew calls) and the renewer that
 * replaces them at half-life. A renewal also updates the replication port's and senders'
 * material when they read the same files (the default `--tls-dir`, `<data>/identity`); a
 * separate TLS folder belongs to the operator and is left alone.
 */
import { resolve } from 'node:path';
import type { Clock } from '../../../common/time/clock.ts';
import type { Logger } from '../../../common/log/log.ts';
import { RotatingTls, type TlsMaterial } from '../transport/rotating-tls.ts';
import { createCertRenewer, type CertRenewer } from './cert-renewer.ts';
import { identityDir, type HostIdentity } from './host-identity.ts';
import { createProviderClient } from './provider-client.ts';

export interface HostCredentials {
  readonly tls: RotatingTls;
  readonly renewer: CertRenewer;
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
  const client = createProviderClient({
    target: a.identity.info.provider,
    rootCaPem: a.identity.caPem,
    provider: {
      vault: a.identity.info.vault,
      intermediateFingerprint: a.identity.info.providerCaFingerprint,
    },
    own: tls,
  });
  const renewer = createCertRenewer({
    dataDir: a.dataDir,
    identity: a.identity,
    renew: (csrPem) => client.renew(csrPem),
    onRenewed: (id) => {
      tls.update(materialOf(id));
      if (sameFiles) a.replicationTls?.update(materialOf(id));
    },
    clock: a.clock,
    log: a.log,
  });
  return { tls, renewer, close: () => client.close() };
}
