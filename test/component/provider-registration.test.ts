/**
 * A provider registering against a real coordinator (HTTPS + WebSocket on port 0): the pinned
 * CA, the CSR and certificates, the stored identity, restarts of either side, liveness in
 * `server list`, cloud sync, and the refusals of a coordinator with another CA.
 */
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseJoinToken } from '../../certs/secrets.ts';
import { fingerprintOfPem, identityFromCertPem } from '../../certs/inspect.ts';
import { verifyChain } from '../../certs/verify.ts';
import { openCoordinatorSocket } from '../../agent/provider/channel/coordinator-socket.ts';
import { decodeEnvelope } from '../../common/wire/agent-channel-messages.ts';
import { ProviderLab } from '../helpers/provider-lab.ts';
import { waitFor } from '../helpers/wait-for.ts';

let lab: ProviderLab;
afterEach(async () => lab.cleanup());

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

describe('provider registration', () => {
  it('registers with the key, stores its identity, and shows up connected with synced clouds', async () => {
    lab = new ProviderLab();
    const c = await lab.coordinator();
    await c.api.createVault('prod');
    const keyFile = lab.key(c.api, 'prod');
    const data = lab.path('ny');
    const p = await lab.provider({ data, key: await keyFile });

    const id = p.agent.identity;
    expect(id.info).toMatchObject({ vault: 'prod', name: 'VMM-NewYork' });
    expect(identityFromCertPem(id.clientCertPem)).toEqual({
      kind: 'provider',
      vault: 'prod',
      name: 'vmm-newyork',
    });
    expect(fingerprintOfPem(id.rootCaPem)).toBe(fingerprintOfPem(c.caCertPem));
    // The provider's intermediate CA chains to the root and is limited to the vault.
    expect(verifyChain(id.caCertPem, [c.caCertPem], Date.now())).toEqual({ ok: true });
    for (const f of ['identity/client.key', 'identity/ca.key', 'host-join-token']) {
      expect(statSync(join(data, f)).mode & 0o777, f).toBe(0o600);
    }
    const token = parseJoinToken(readFileSync(join(data, 'host-join-token'), 'utf8'));
    expect(token.caFingerprint).toBe(fingerprintOfPem(id.caCertPem));

    await waitFor(async () => (await c.api.listServers('prod'))[0]?.state === 'connected');
    expect(await c.api.listServers('prod')).toEqual([
      {
        name: 'VMM-NewYork',
        state: 'connected',
        version: '0.1.0',
        clouds: ['GoldCloud1', 'SilverCloud1'],
      },
    ]);
    expect(await c.api.listClouds('prod')).toEqual([
      {
        server: 'VMM-NewYork',
        name: 'GoldCloud1',
        hostGroups: ['NY-Gold'],
        synced: true,
        policy: null,
        pairedWith: null,
      },
      {
        server: 'VMM-NewYork',
        name: 'SilverCloud1',
        hostGroups: ['NY-Silver'],
        synced: true,
        policy: null,
        pairedWith: null,
      },
    ]);
    const jobs = await c.api.listJobs('prod');
    expect(jobs.map((j) => [j.type, j.state])).toEqual([['provider.register', 'succeeded']]);
    // The coordinator stores only the key secret's hash; the private keys never left the provider.
    const secret = (JSON.parse(readFileSync(await keyFile, 'utf8')) as { secret: string }).secret;
    await c.stop();
    const coordinatorFiles = filesUnder(lab.path('coordinator'));
    expect(coordinatorFiles.filter((f) => readFileSync(f).includes(secret))).toEqual([]);
    const keyBody = id.clientKeyPem.split('\n')[1]!;
    expect(coordinatorFiles.filter((f) => readFileSync(f).includes(keyBody))).toEqual([]);
  });

  it('restarts without a key; is disconnected while stopped; reconnects after a coordinator restart', async () => {
    lab = new ProviderLab();
    const c = await lab.coordinator();
    await c.api.createVault('prod');
    const data = lab.path('ny');
    const first = await lab.provider({ data, key: await lab.key(c.api, 'prod') });
    await waitFor(async () => (await c.api.listServers('prod'))[0]?.state === 'connected');
    await first.stop();
    await waitFor(async () => (await c.api.listServers('prod'))[0]?.state === 'disconnected');

    const second = await lab.provider({ data });
    expect(second.agent.identity.clientCertPem).toBe(first.agent.identity.clientCertPem);
    await waitFor(async () => (await c.api.listServers('prod'))[0]?.state === 'connected');

    // The coordinator goes away and comes back on the same address: the provider reconnects.
    const url = new URL(c.url);
    await c.stop();
    await waitFor(() => second.agent.channel.state() !== 'connected');
    const again = await lab.coordinator(lab.path('coordinator'), {
      listen: `127.0.0.1:${url.port}`,
    });
    await waitFor(async () => (await again.api.listServers('prod'))[0]?.state === 'connected');
    expect(second.agent.channel.state()).toBe('connected');
    // Registration happened once: the restarts made no new job.
    expect((await again.api.listJobs('prod')).length).toBe(1);
  });

  it('refuses a coordinator impersonated with another CA (the pin), and stores nothing', async () => {
    lab = new ProviderLab();
    const real = await lab.coordinator();
    await real.api.createVault('prod');
    const impostor = await lab.coordinator(lab.path('impostor'));
    const keyFile = await lab.key(real.api, 'prod');
    const key = JSON.parse(readFileSync(keyFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(keyFile, JSON.stringify({ ...key, coordinatorUrl: impostor.url }));
    const data = lab.path('ny');
    await expect(lab.provider({ data, key: keyFile })).rejects.toMatchObject({
      code: 'SS_FINGERPRINT_MISMATCH',
    });
    expect(readdirSync(join(data, 'identity'))).not.toContain('identity.json');
    expect(await real.api.listServers('prod')).toEqual([]);
  });

  it('syncs no clouds with --sync-clouds none, then one at a time with cloud sync', async () => {
    lab = new ProviderLab();
    const c = await lab.coordinator();
    await c.api.createVault('prod');
    await lab.provider({
      data: lab.path('ny'),
      key: await lab.key(c.api, 'prod'),
      syncClouds: 'none',
    });
    await waitFor(async () => (await c.api.listServers('prod'))[0]?.state === 'connected');
    expect((await c.api.listClouds('prod')).map((x) => [x.name, x.synced, x.hostGroups])).toEqual([
      ['GoldCloud1', false, []],
      ['SilverCloud1', false, []],
    ]);
    const job = await c.api.syncCloud('prod', 'VMM-NewYork', 'GoldCloud1');
    const done = await waitFor(async () => {
      const j = await c.api.getJob(job.id);
      return j.state === 'running' ? undefined : j;
    });
    expect(done.state).toBe('succeeded');
    expect((await c.api.listClouds('prod')).map((x) => [x.name, x.synced, x.hostGroups])).toEqual([
      ['GoldCloud1', true, ['NY-Gold']],
      ['SilverCloud1', false, []],
    ]);
    await expect(c.api.syncCloud('prod', 'VMM-NewYork', 'BronzeCloud1')).rejects.toMatchObject({
      code: 'SS_NOT_FOUND',
    });
  });

  it('keeps vaults apart and refuses a second provider on the same data folder', async () => {
    lab = new ProviderLab();
    const c = await lab.coordinator();
    await c.api.createVault('prod');
    await c.api.createVault('dr');
    const data = lab.path('ny');
    await lab.provider({ data, key: await lab.key(c.api, 'prod') });
    expect((await c.api.listServers('prod')).length).toBe(1);
    expect(await c.api.listServers('dr')).toEqual([]);
    expect(await c.api.listClouds('dr')).toEqual([]);
    await expect(lab.provider({ data })).rejects.toMatchObject({ code: 'SS_DATA_FOLDER_LOCKED' });
  });

  it('keeps trying to register while the coordinator is down, then registers once', async () => {
    lab = new ProviderLab();
    const c = await lab.coordinator();
    await c.api.createVault('prod');
    const key = await lab.key(c.api, 'prod', { singleUse: true });
    const port = new URL(c.url).port;
    await c.stop();
    const starting = lab.provider({ data: lab.path('ny'), key });
    // Registration is pending (the key pair and CSRs are kept for the retries)…
    await waitFor(() => readdirSync(join(lab.path('ny'), 'identity')).includes('pending.json'));
    const again = await lab.coordinator(lab.path('coordinator'), { listen: `127.0.0.1:${port}` });
    const p = await starting;
    expect(p.agent.identity.info.name).toBe('VMM-NewYork');
    await waitFor(async () => (await again.api.listServers('prod'))[0]?.state === 'connected');
    expect((await again.api.listKeys('prod'))[0]).toMatchObject({ uses: 1 });
  });

  it('shuts out the old certificate when the server registers again', async () => {
    lab = new ProviderLab();
    const c = await lab.coordinator();
    await c.api.createVault('prod');
    const old = await lab.provider({ data: lab.path('ny'), key: await lab.key(c.api, 'prod') });
    await old.stop();
    await lab.provider({ data: lab.path('ny-rebuilt'), key: await lab.key(c.api, 'prod') });
    const id = old.agent.identity;
    const { ws } = await openCoordinatorSocket({
      coordinatorUrl: id.info.coordinatorUrl,
      trust: {
        mode: 'verified',
        rootCaPem: id.rootCaPem,
        keyPem: id.clientKeyPem,
        certPem: id.clientCertPem,
      },
      now: Date.now,
    });
    const frame = await new Promise<Buffer>((resolve) => ws.once('message', resolve));
    expect(decodeEnvelope(frame)).toMatchObject({ error: { code: 'SS_CERT_INVALID' } });
    ws.terminate();
  });
});
