/**
 * Host enrolment and the host↔provider control stream against a real coordinator and
 * provider (port 0, temp folders): a good token gives a certificate chained to the vault root
 * and later starts need no token; a wrong secret, a token pinning another provider's CA and
 * an undeclared host name are refused and store nothing; an enrolled host creates the VMs its
 * site file declares and its inventory reaches `vm list` / `vm show` with NBD URIs.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityFromCertPem } from '../../certs/inspect.ts';
import { parseJoinToken, formatJoinToken, generateSecret } from '../../certs/secrets.ts';
import { verifyChain } from '../../certs/verify.ts';
import { HostCommandLog } from '../../agent/host/enrolment/command-log.ts';
import { ensureEnrolled } from '../../agent/host/enrolment/enrol.ts';
import { hostCommands } from '../../agent/host/enrolment/host-commands.ts';
import { createProviderClient } from '../../agent/host/enrolment/provider-client.ts';
import { createProviderLink, type ProviderLink } from '../../agent/host/enrolment/provider-link.ts';
import { createVmManager, type VmManager } from '../../agent/host/vm/vm-manager.ts';
import type { StartedProvider } from '../../agent/provider/main.ts';
import type { ApiClient } from '../../common/api-client/index.ts';
import { silentLogger } from '../../common/log/log.ts';
import { systemClock } from '../../common/time/clock.ts';
import { CHICAGO_SITE, ProviderLab } from '../helpers/provider-lab.ts';
import { waitFor } from '../helpers/wait-for.ts';

let lab: ProviderLab;
let api: ApiClient;
let rootPem: string;
let ny: StartedProvider;
let chicago: StartedProvider;
const stops: Array<() => Promise<void>> = [];

beforeAll(async () => {
  lab = new ProviderLab();
  const c = await lab.coordinator();
  api = c.api;
  rootPem = c.caCertPem;
  await api.createVault('prod');
  ny = await lab.provider({ data: lab.path('ny'), key: await lab.key(api, 'prod') });
  chicago = await lab.provider({
    data: lab.path('chi'),
    key: await lab.key(api, 'prod'),
    site: CHICAGO_SITE,
  });
});

afterAll(async () => {
  for (const s of stops.reverse()) await s();
  await lab.cleanup();
});

const nyTarget = (): string => `127.0.0.1:${ny.agent.hosts.port}`;
const tokenOf = (p: StartedProvider): string => join(p.dataDir, 'host-join-token');

function enrol(data: string, name: string, tokenFile: string | undefined, provider = nyTarget()) {
  return ensureEnrolled({
    dataDir: data,
    name,
    provider,
    tokenFile,
    address: '127.0.0.1',
    now: () => Date.now(),
    log: silentLogger,
  });
}

describe('host enrolment', () => {
  it('enrols with the join token: key 0600, certificate chained to the vault root', async () => {
    const data = lab.path('h1');
    const id = await enrol(data, 'ny-hv1', tokenOf(ny));
    expect(id.info).toMatchObject({
      vault: 'prod',
      name: 'ny-hv1',
      identity: 'secondsite://prod/host/ny-hv1',
      server: 'VMM-NewYork',
    });
    expect(identityFromCertPem(id.certPem)).toEqual({
      kind: 'host',
      vault: 'prod',
      name: 'ny-hv1',
    });
    expect(verifyChain(id.certPem, [rootPem], Date.now())).toEqual({ ok: true });
    expect(statSync(join(data, 'identity/key.pem')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(data, 'identity/ca.pem'), 'utf8')).toContain(rootPem.trim());
    // The IP SAN peers will dial.
    const { X509Certificate } = await import('node:crypto');
    expect(new X509Certificate(id.certPem).subjectAltName).toContain('IP Address:127.0.0.1');
  });

  it("gives hosts of two providers identity files that verify each other (the replication port's mTLS)", async () => {
    const nyHost = await enrol(lab.path('h1'), 'ny-hv1', undefined);
    const chiHost = await ensureEnrolled({
      dataDir: lab.path('chi-h1'),
      name: 'chi-hv1',
      provider: `127.0.0.1:${chicago.agent.hosts.port}`,
      tokenFile: tokenOf(chicago),
      address: '127.0.0.1',
      now: () => Date.now(),
      log: silentLogger,
    });
    const server = createServer(
      { key: nyHost.keyPem, cert: nyHost.certPem, ca: nyHost.caPem, requestCert: true },
      (s) => s.end(),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const peer = await new Promise<TLSSocket>((resolve, reject) => {
        const c = connect({
          host: '127.0.0.1',
          port,
          key: chiHost.keyPem,
          cert: chiHost.certPem,
          ca: chiHost.caPem,
          checkServerIdentity: () => undefined,
        });
        c.once('secureConnect', () => resolve(c));
        c.once('error', reject);
      });
      expect(peer.authorized).toBe(true);
      expect(peer.getPeerCertificate().subjectaltname).toContain('secondsite://prod/host/ny-hv1');
      peer.destroy();
    } finally {
      server.close();
    }
  });

  it('starts again without the token, with the stored identity', async () => {
    const data = lab.path('h1');
    const before = readFileSync(join(data, 'identity/cert.pem'), 'utf8');
    const id = await enrol(data, 'ny-hv1', undefined);
    expect(id.certPem).toBe(before);
  });

  it('refuses a wrong secret with SS_KEY_INVALID and stores nothing', async () => {
    const real = parseJoinToken(readFileSync(tokenOf(ny), 'utf8'));
    const bad = lab.path('bad-token');
    writeFileSync(
      bad,
      formatJoinToken({ caFingerprint: real.caFingerprint, secret: generateSecret() }),
    );
    const data = lab.path('h-bad');
    await expect(enrol(data, 'ny-hv2', bad)).rejects.toMatchObject({ code: 'SS_KEY_INVALID' });
    expect(existsSync(join(data, 'identity'))).toBe(false);
  });

  it("refuses a provider that is not the one the token pins (another provider's CA)", async () => {
    const data = lab.path('h-pin');
    await expect(enrol(data, 'ny-hv2', tokenOf(chicago))).rejects.toMatchObject({
      code: 'SS_FINGERPRINT_MISMATCH',
    });
    expect(existsSync(join(data, 'identity'))).toBe(false);
  });

  it('refuses a host the site file does not declare', async () => {
    const data = lab.path('h-unknown');
    await expect(enrol(data, 'ny-hv9', tokenOf(ny))).rejects.toMatchObject({
      code: 'SS_NOT_FOUND',
    });
    expect(existsSync(join(data, 'identity'))).toBe(false);
  });

  it('needs the token at the first start', async () => {
    await expect(enrol(lab.path('h-none'), 'ny-hv2', undefined)).rejects.toMatchObject({
      code: 'SS_BAD_INPUT',
      details: { field: '--token-file' },
    });
  });
});

describe('host inventory through the provider', () => {
  let vms: VmManager;
  let link: ProviderLink;

  it('creates the declared VMs, starts the running ones, and reports them to the coordinator', async () => {
    const data = lab.path('h1');
    const identity = await enrol(data, 'ny-hv1', undefined);
    const run = new AbortController();
    vms = createVmManager({
      dataDir: data,
      clock: systemClock,
      log: silentLogger,
      freezeTimeoutMs: 1000,
    });
    const vmsDone = vms.run(run.signal);
    link = await createProviderLink({
      dataDir: data,
      identity,
      vms,
      version: 'test',
      log: silentLogger,
    });
    const linkDone = link.run(run.signal);
    stops.push(async () => {
      run.abort();
      await link.shutdown();
      await linkDone;
      await vmsDone;
      await vms.shutdown();
    });
    await waitFor(() => link.state() === 'connected', { what: 'the control stream' });
    const vm1 = await waitFor(
      async () =>
        (await api.listVms('prod')).find((v) => v.name === 'VM1' && v.state === 'running'),
      { what: 'VM1 running in vm list' },
    );
    expect(vm1).toEqual({
      name: 'VM1',
      server: 'VMM-NewYork',
      cloud: 'GoldCloud1',
      host: 'ny-hv1',
      state: 'running',
      role: 'none',
      disks: [
        {
          index: 0,
          sizeBytes: 1024 ** 3,
          nbd: `nbd+unix:///VM1-0?socket=${join(data, 'run', 'VM1-0.sock')}`,
        },
      ],
      nics: [{ network: 'VMNetwork1 NewYork', subnet: 'web' }],
    });
    expect(await api.getVm('prod', 'VMM-NewYork/VM1')).toEqual(vm1);
    expect(ny.agent.hosts.registry.state('ny-hv1')).toBe('connected');
  });

  it('reports local changes, and filters by cloud', async () => {
    await vms.createVm({ name: 'local1', diskSizes: [1024 * 1024], nics: [] });
    await waitFor(async () => (await api.listVms('prod')).some((v) => v.name === 'local1'), {
      what: 'local1 in vm list',
    });
    expect((await api.getVm('prod', 'VMM-NewYork/local1')).state).toBe('stopped');
    expect(await api.listVms('prod', 'VMM-NewYork/SilverCloud1')).toEqual([]);
    expect((await api.listVms('prod', 'VMM-NewYork/GoldCloud1')).map((v) => v.name)).toEqual([
      'local1',
      'VM1',
    ]);
    await expect(api.getVm('prod', 'VMM-NewYork/nope')).rejects.toMatchObject({
      code: 'SS_NOT_FOUND',
    });
  });

  it('refuses a control stream without a host certificate', async () => {
    const id = await enrol(lab.path('h1'), 'ny-hv1', undefined);
    const client = createProviderClient({
      target: nyTarget(),
      rootCaPem: id.caPem,
      provider: { vault: 'prod', intermediateFingerprint: id.info.providerCaFingerprint },
    });
    try {
      const stream = client.connect();
      const ended = await new Promise<{ code?: number; metadata?: { get(k: string): unknown[] } }>(
        (resolve) => {
          stream.on('error', resolve);
          stream.on('data', () => undefined);
        },
      );
      expect(ended.metadata?.get('ss-code')[0]).toBe('SS_UNAUTHENTICATED');
    } finally {
      client.close();
    }
  });
});

describe('the control stream', () => {
  it('answers a frame before hello with a protocol error and ends the stream', async () => {
    const id = await enrol(lab.path('h1'), 'ny-hv1', undefined);
    const client = createProviderClient({
      target: nyTarget(),
      rootCaPem: id.caPem,
      provider: { vault: 'prod', intermediateFingerprint: id.info.providerCaFingerprint },
      own: { keyPem: id.keyPem, certPem: id.certPem },
    });
    try {
      const stream = client.connect();
      const frames: unknown[] = [];
      stream.on('data', (f: unknown) => frames.push(f));
      stream.on('error', () => undefined);
      stream.write({ inventory: { vms: [] } });
      await new Promise((resolve) => stream.once('end', resolve));
      expect(frames).toMatchObject([{ body: 'error', error: { code: 'SS_PROTOCOL' } }]);
    } finally {
      client.close();
    }
  });
});

describe('provider commands on the host', () => {
  it('applies a command id once, also after a restart of the host', async () => {
    const data = lab.path('cmd-host');
    const vmsA = createVmManager({
      dataDir: data,
      clock: systemClock,
      log: silentLogger,
      freezeTimeoutMs: 1000,
    });
    const create = {
      commandId: 'site/ny-hv1/x/create',
      kind: 'createVm' as const,
      createVm: {
        name: 'x',
        disks: [{ sizeBytes: String(1024 ** 2), classification: '' }],
        nics: [],
        start: false,
      },
    };
    const first = hostCommands(vmsA, await HostCommandLog.open(data));
    expect(await first.apply(create)).toBeNull();
    expect(await first.apply(create)).toBeNull();
    expect(vmsA.list().map((v) => v.config.name)).toEqual(['x']);
    // The same id after a restart: the recorded answer, no second create.
    await vmsA.stopVm('x');
    const again = hostCommands(vmsA, await HostCommandLog.open(data));
    const other = {
      ...create,
      commandId: 'other',
      createVm: { ...create.createVm, name: '../bad' },
    };
    expect(await again.apply(create)).toBeNull();
    expect(await again.apply(other)).toMatchObject({ code: 'SS_BAD_INPUT' });
    expect(await again.apply(other)).toMatchObject({ code: 'SS_BAD_INPUT' });
    expect(vmsA.list().map((v) => v.config.name)).toEqual(['x']);
    await vmsA.shutdown();
  });
});
