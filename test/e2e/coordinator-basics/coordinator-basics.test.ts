import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchTrusting } from '../../../cli/admin-config.ts';
import { createApiClient, type JobView, type VaultView } from '../../../common/api-client/index.ts';
import { jsonOf, runCli, startDaemon, type Daemon } from '../../helpers/secondsite-cli.ts';
import { waitFor } from '../../helpers/wait-for.ts';

let dir: string;
let data: string;
let adminFile: string;
let coordinator: Daemon | undefined;
const env = (): NodeJS.ProcessEnv => ({ SECONDSITE_CONFIG: adminFile, SECONDSITE_TEST_JOBS: '1' });

/** Starts the coordinator and waits for the {url, adminFile} line it prints once listening. */
async function startCoordinator(): Promise<{ url: string; adminFile: string }> {
  const d = startDaemon(
    ['coordinator', 'start', '--data', data, '--listen', '127.0.0.1:0', '--json'],
    {
      env: { SECONDSITE_TEST_JOBS: '1' },
    },
  );
  coordinator = d;
  return waitFor(
    () => {
      if (d.child.exitCode !== null) throw new Error(`coordinator exited: ${d.stderr()}`);
      return d.stdout().includes('}')
        ? (JSON.parse(d.stdout()) as { url: string; adminFile: string })
        : undefined;
    },
    { what: 'the coordinator to listen' },
  );
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ss-e2e-coordinator-'));
  data = join(dir, 'data');
  adminFile = join(data, 'admin.json');
});

afterAll(async () => {
  if (coordinator !== undefined && coordinator.child.exitCode === null) {
    coordinator.child.kill('SIGKILL');
    await coordinator.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('coordinator-basics', () => {
  it('1. starts and writes admin.json (0600) with its URL', async () => {
    const started = await startCoordinator();
    expect(started.adminFile).toBe(adminFile);
    expect(statSync(adminFile).mode & 0o777).toBe(0o600);
    const admin = JSON.parse(readFileSync(adminFile, 'utf8')) as { url: string; caCertPem: string };
    expect(admin.url).toBe(started.url);
    expect(admin.caCertPem).toContain('BEGIN CERTIFICATE');
  });

  it('2. creates a vault and lists it', async () => {
    const created = await runCli(['vault', 'create', 'prod', '--json'], { env: env() });
    expect(created.code).toBe(0);
    expect(jsonOf<VaultView>(created).name).toBe('prod');
    const list = await runCli(['vault', 'list', '--json'], { env: env() });
    expect(list.code).toBe(0);
    expect(jsonOf<VaultView[]>(list).map((v) => v.name)).toEqual(['prod']);
  });

  it('3. refuses a bad vault name with exit 2 and changes nothing', async () => {
    const bad = await runCli(['vault', 'create', 'Bad Name', '--json'], { env: env() });
    expect(bad.code).toBe(2);
    expect(
      jsonOf<{ error: { code: string; details: { field: string } } }>(bad).error,
    ).toMatchObject({
      code: 'SS_BAD_INPUT',
      details: { field: 'name' },
    });
    const list = await runCli(['vault', 'list', '--json'], { env: env() });
    expect(jsonOf<VaultView[]>(list).map((v) => v.name)).toEqual(['prod']);
  });

  it('4. refuses a second coordinator on the same data folder', async () => {
    const second = await runCli([
      'coordinator',
      'start',
      '--data',
      data,
      '--listen',
      '127.0.0.1:0',
    ]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('SS_DATA_FOLDER_LOCKED');
    const list = await runCli(['vault', 'list', '--json'], { env: env() });
    expect(list.code).toBe(0);
  });

  it('5. an admin command without an admin.json to find exits 2', async () => {
    const r = await runCli(['vault', 'list'], { env: { SECONDSITE_CONFIG: '' }, cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('SS_BAD_INPUT');
  });

  it('6. resumes a job at its unfinished step after kill -9', async () => {
    const trace = join(dir, 'trace.txt');
    const go = join(dir, 'go');
    const admin = JSON.parse(readFileSync(adminFile, 'utf8')) as {
      url: string;
      caCertPem: string;
      adminToken: string;
    };
    const transport = fetchTrusting(admin.caCertPem);
    const api = createApiClient({
      url: admin.url,
      token: admin.adminToken,
      fetch: transport.fetch,
    });
    const job = await api.startTestJob('prod', {
      traceFile: trace,
      steps: [
        { name: 'first', action: 'ok' },
        { name: 'second', action: 'block', untilFile: go },
        { name: 'third', action: 'ok' },
      ],
    });
    await transport.close();
    await waitFor(() => existsSync(trace) && readFileSync(trace, 'utf8') === 'first\nsecond\n', {
      what: 'step two to be running',
    });
    coordinator!.child.kill('SIGKILL');
    expect(await coordinator!.exited).toBe('SIGKILL');

    await startCoordinator(); // takes over the stale lock; the URL may change, admin.json follows
    writeFileSync(go, '');
    const waited = await runCli(['job', 'wait', job.id, '--timeout', '2m', '--json'], {
      env: env(),
    });
    expect(waited.code).toBe(0);
    const done = jsonOf<JobView>(waited);
    expect(done.state).toBe('succeeded');
    expect(done.steps.map((s) => s.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    // "second" ran twice (interrupted, then resumed); "first" only once.
    expect(readFileSync(trace, 'utf8')).toBe('first\nsecond\nsecond\nthird\n');
    const shown = await runCli(['job', 'list', '--vault', 'prod', '--json'], { env: env() });
    expect(jsonOf<JobView[]>(shown).map((j) => j.id)).toEqual([job.id]);
  });

  it('7. stops cleanly on SIGTERM and releases the data folder', async () => {
    coordinator!.child.kill('SIGTERM');
    expect(await coordinator!.exited).toBe(0);
    expect(existsSync(join(data, 'LOCK.pid'))).toBe(false);
    const r = await runCli(['vault', 'list'], { env: env() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('SS_UNAVAILABLE');
  });
});
