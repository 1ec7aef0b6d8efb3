/**
 * The coordinator wired in-process on port 0 over real HTTPS: first start makes the PKI, the
 * admin token and admin.json; a restart keeps them; the API trusts only its own CA's chain.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fetchTrusting } from '../../cli/admin-config.ts';
import { createApiClient, type ApiClient } from '../../common/api-client/index.ts';
import { silentLogger } from '../../common/log/log.ts';
import { startCoordinator, type StartedCoordinator } from '../../coordinator/main.ts';
import { waitFor } from '../helpers/wait-for.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempData(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ss-coord-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'data');
}

async function start(data: string, testJobs = false): Promise<StartedCoordinator> {
  const c = await startCoordinator(
    { data, listen: '127.0.0.1:0', testJobs },
    { log: silentLogger },
  );
  let stopped = false;
  cleanups.push(async () => {
    if (!stopped) await c.stop();
  });
  const stop = c.stop;
  return { ...c, stop: async () => ((stopped = true), await stop()) };
}

function clientFor(adminFile: string, ca?: string): ApiClient {
  const admin = JSON.parse(readFileSync(adminFile, 'utf8')) as {
    url: string;
    caCertPem: string;
    adminToken: string;
  };
  const transport = fetchTrusting(ca ?? admin.caCertPem);
  cleanups.push(() => transport.close());
  return createApiClient({ url: admin.url, token: admin.adminToken, fetch: transport.fetch });
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

describe('coordinator process', () => {
  it('makes its PKI, token and admin.json at first start, with private files 0600', async () => {
    const data = tempData();
    const c = await start(data);
    for (const f of ['admin.json', 'pki/ca.key', 'pki/server.key']) {
      expect(statSync(join(data, f)).mode & 0o777, f).toBe(0o600);
    }
    const api = clientFor(c.adminFile);
    expect((await api.createVault('prod')).name).toBe('prod');
    expect((await api.listVaults()).map((v) => v.name)).toEqual(['prod']);
    await c.stop();
    // Only admin.json holds the token: the store keeps its hash.
    const token = (JSON.parse(readFileSync(c.adminFile, 'utf8')) as { adminToken: string })
      .adminToken;
    const holders = filesUnder(data).filter((f) => readFileSync(f).includes(token));
    expect(holders).toEqual([c.adminFile]);
  });

  it('keeps its CA, token and vaults across a restart', async () => {
    const data = tempData();
    const first = await start(data);
    await clientFor(first.adminFile).createVault('prod');
    const before = JSON.parse(readFileSync(first.adminFile, 'utf8')) as Record<string, string>;
    await first.stop();
    const second = await start(data);
    const after = JSON.parse(readFileSync(second.adminFile, 'utf8')) as Record<string, string>;
    expect(after['adminToken']).toBe(before['adminToken']);
    expect(after['caCertPem']).toBe(before['caCertPem']);
    expect((await clientFor(second.adminFile).listVaults()).map((v) => v.name)).toEqual(['prod']);
  });

  it('a lost admin.json gets a new token, and the old one stops working', async () => {
    const data = tempData();
    const first = await start(data);
    const old = JSON.parse(readFileSync(first.adminFile, 'utf8')) as Record<string, string>;
    await first.stop();
    rmSync(first.adminFile);
    const second = await start(data);
    const fresh = JSON.parse(readFileSync(second.adminFile, 'utf8')) as Record<string, string>;
    expect(fresh['adminToken']).not.toBe(old['adminToken']);
    writeFileSync(
      join(data, 'old.json'),
      JSON.stringify({ ...fresh, adminToken: old['adminToken'] }),
    );
    await expect(clientFor(join(data, 'old.json')).listVaults()).rejects.toMatchObject({
      code: 'SS_UNAUTHENTICATED',
    });
  });

  it('is refused by a client that does not trust its CA', async () => {
    const data = tempData();
    const other = await start(tempData());
    const c = await start(data);
    await expect(clientFor(c.adminFile, other.caCertPem).listVaults()).rejects.toMatchObject({
      code: 'SS_UNAVAILABLE',
    });
  });

  it('refuses a second start on a data folder in use', async () => {
    const data = tempData();
    const c = await start(data);
    await expect(
      startCoordinator({ data, listen: '127.0.0.1:0' }, { log: silentLogger }),
    ).rejects.toMatchObject({ name: 'SecondsiteError' });
    expect((await clientFor(c.adminFile).listVaults()).length).toBe(0);
  });

  it('resumes a running job after a clean stop and start', async () => {
    const data = tempData();
    const go = join(data, '..', 'go');
    const first = await start(data, true);
    const api = clientFor(first.adminFile);
    await api.createVault('prod');
    const job = await api.startTestJob('prod', {
      steps: [
        { name: 'wait', action: 'block', untilFile: go },
        { name: 'done', action: 'ok' },
      ],
    });
    await waitFor(async () => (await api.getJob(job.id)).steps[0]?.state === 'running');
    await first.stop();
    const second = await start(data, true);
    const again = clientFor(second.adminFile);
    expect((await again.getJob(job.id)).state).toBe('running');
    writeFileSync(go, '');
    const done = await waitFor(async () => {
      const j = await again.getJob(job.id);
      return j.state === 'succeeded' ? j : undefined;
    });
    expect(done.steps.map((s) => s.state)).toEqual(['succeeded', 'succeeded']);
  });
});
