/**
 * ProviderHosts.Renew against a real coordinator and provider (port 0, temp folders):
 *
 * 1. A host enrols with the join token (as in host-enrolment.test.ts).
 * 2. Over mutual TLS with its current certificate it sends a CSR for its own identity, with a
 *    new key: the answer is a certificate for that key and identity, chained to the vault
 *    root, carrying the current certificate's IP SAN, plus the trust bundle.
 * 3. The host installs it through the renewer's path (cert-renewer.ts) and a control stream
 *    made with the renewed certificate (RotatingTls) reaches the provider.
 * Negative steps: a CSR for another host of the site is refused (SS_CSR_INVALID), and so is
 * a Renew without a client certificate (SS_UNAUTHENTICATED).
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyAndCsr } from '../../certs/csr.ts';
import { hostIdentity } from '../../certs/identity.ts';
import { identityFromCertPem } from '../../certs/inspect.ts';
import { verifyChain } from '../../certs/verify.ts';
import { ensureEnrolled } from '../../agent/host/enrolment/enrol.ts';
import type { HostIdentity } from '../../agent/host/enrolment/host-identity.ts';
import { createProviderClient } from '../../agent/host/enrolment/provider-client.ts';
import { RotatingTls } from '../../agent/host/transport/rotating-tls.ts';
import type { StartedProvider } from '../../agent/provider/main.ts';
import { silentLogger } from '../../common/log/log.ts';
import { ProviderLab } from '../helpers/provider-lab.ts';

let lab: ProviderLab;
let rootPem: string;
let ny: StartedProvider;
let id: HostIdentity;

beforeAll(async () => {
  lab = new ProviderLab();
  const c = await lab.coordinator();
  rootPem = c.caCertPem;
  await c.api.createVault('prod');
  ny = await lab.provider({ data: lab.path('ny'), key: await lab.key(c.api, 'prod') });
  id = await ensureEnrolled({
    dataDir: lab.path('h1'),
    name: 'ny-hv1',
    provider: target(),
    tokenFile: join(ny.dataDir, 'host-join-token'),
    address: '127.0.0.1',
    now: () => Date.now(),
    log: silentLogger,
  });
});

afterAll(async () => {
  await lab.cleanup();
});

const target = (): string => `127.0.0.1:${ny.agent.hosts.port}`;

function client(own?: HostIdentity | RotatingTls) {
  return createProviderClient({
    target: target(),
    rootCaPem: id.caPem,
    provider: { vault: 'prod', intermediateFingerprint: id.info.providerCaFingerprint },
    ...(own === undefined
      ? {}
      : { own: own instanceof RotatingTls ? own : { keyPem: own.keyPem, certPem: own.certPem } }),
  });
}

describe('ProviderHosts.Renew', () => {
  it('signs a new key for the caller’s own identity, keeping its IP SAN', async () => {
    const c = client(id);
    try {
      const { keyPem, csrPem } = createKeyAndCsr({ identity: hostIdentity('prod', 'ny-hv1') });
      const r = await c.renew(csrPem);
      expect(verifyChain(r.certPem + r.intermediatePem, [rootPem], Date.now())).toEqual({
        ok: true,
      });
      expect(identityFromCertPem(r.certPem)).toEqual(hostIdentity('prod', 'ny-hv1'));
      const x = new X509Certificate(r.certPem);
      expect(x.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
      expect(x.subjectAltName).toContain('IP Address:127.0.0.1');
      expect(r.caBundlePem.startsWith(rootPem.trim().slice(0, 40))).toBe(true);
      expect(r.caBundlePem).toContain(r.intermediatePem.trim());
      // The renewed certificate is good for the provider too: a control stream connects.
      const tls = new RotatingTls({
        caPem: r.caBundlePem,
        certPem: r.certPem + r.intermediatePem,
        keyPem,
      });
      const renewed = client(tls);
      try {
        const stream = renewed.connect();
        const ok = await new Promise<boolean>((resolve) => {
          stream.on('data', (f: { body?: string }) => resolve(f.body === 'welcome'));
          stream.on('error', () => resolve(false));
          stream.write({
            hello: { protocolMin: 1, protocolMax: 1, version: 't', inventory: { vms: [] } },
          });
        });
        expect(ok).toBe(true);
        stream.cancel();
      } finally {
        renewed.close();
      }
    } finally {
      c.close();
    }
  });

  it('refuses a CSR for another host, and a caller without a certificate', async () => {
    const c = client(id);
    const anon = client();
    try {
      const other = createKeyAndCsr({ identity: hostIdentity('prod', 'ny-hv2') }).csrPem;
      await expect(c.renew(other)).rejects.toMatchObject({ code: 'SS_CSR_INVALID' });
      const own = createKeyAndCsr({ identity: hostIdentity('prod', 'ny-hv1') }).csrPem;
      await expect(anon.renew(own)).rejects.toMatchObject({ code: 'SS_UNAUTHENTICATED' });
    } finally {
      c.close();
      anon.close();
    }
  });
});
