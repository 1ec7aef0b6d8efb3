import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CloudView, JobView, KeyView, ServerView } from '../../../common/api-client/index.ts';
import { CHICAGO_SITE, NEW_YORK_SITE } from '../../helpers/provider-lab.ts';
import {
  cliJson,
  jsonOf,
  printedJson,
  runCli,
  startDaemon,
  type Daemon,
} from '../../helpers/secondsite-cli.ts';
import { waitFor } from '../../helpers/wait-for.ts';

let dir: string;
let adminFile: string;
let url: string;
const daemons: Daemon[] = [];
let provider: Daemon | undefined;
const env = (): NodeJS.ProcessEnv => ({ SECONDSITE_CONFIG: adminFile });
const path = (name: string): string => join(dir, name);

function daemon(args: string[]): Daemon {
  const d = startDaemon(args, { env: { SECONDSITE_HEARTBEAT_MS: '300' } });
  daemons.push(d);
  return d;
}

const printed = printedJson;
const cli = <T>(args: string[], code = 0): Promise<T> => cliJson<T>(args, env(), code);

const servers = (vault = 'prod'): Promise<ServerView[]> =>
  cli(['server', 'list', '--vault', vault]);
const clouds = (vault = 'prod'): Promise<CloudView[]> => cli(['cloud', 'list', '--vault', vault]);

async function startCoordinator(listen: string): Promise<string> {
  const d = daemon([
    'coordinator',
    'start',
    '--data',
    path('coordinator'),
    '--listen',
    listen,
    '--json',
  ]);
  return (await printed<{ url: string }>(d, 'the coordinator')).url;
}

function startProvider(extra: string[] = []): Daemon {
  return daemon([
    'provider',
    'start',
    '--data',
    path('ny'),
    '--site',
    NEW_YORK_SITE,
    '--listen',
    '127.0.0.1:0',
    '--json',
    ...extra,
  ]);
}

/** A provider start that must fail: its exit code and error code. */
async function refused(
  args: string[],
): Promise<{ exit: number | string | null; code: string; message: string }> {
  const r = await runCli(['provider', 'start', '--json', ...args], { env: env() });
  const body = jsonOf<{ error: { code: string; message: string } }>(r);
  return { exit: r.code, code: body.error.code, message: body.error.message };
}

function editKey(from: string, to: string, patch: Record<string, unknown>): string {
  const key = JSON.parse(readFileSync(from, 'utf8')) as Record<string, unknown>;
  writeFileSync(to, JSON.stringify({ ...key, ...patch }), { mode: 0o600 });
  return to;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ss-e2e-registration-'));
  adminFile = path('coordinator/admin.json');
});

afterAll(async () => {
  for (const d of daemons) {
    if (d.child.exitCode === null && d.child.signalCode === null) {
      d.child.kill('SIGKILL');
      await d.exited;
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('registration', () => {
  it('1. starts the coordinator and creates the vaults', async () => {
    url = await startCoordinator('127.0.0.1:0');
    await cli(['vault', 'create', 'prod']);
    await cli(['vault', 'create', 'dr']);
  });

  it('2. downloads a registration key (0600), lists it without its secret', async () => {
    const out = await cli<{ keyId: string; expiresAt: string }>([
      'key',
      'download',
      '--vault',
      'prod',
      '--out',
      path('key.json'),
    ]);
    expect(statSync(path('key.json')).mode & 0o777).toBe(0o600);
    const key = JSON.parse(readFileSync(path('key.json'), 'utf8')) as Record<string, unknown>;
    expect(key).toMatchObject({ vault: 'prod', coordinatorUrl: url, keyId: out.keyId });
    expect(key['caFingerprint']).toMatch(/^[0-9a-f]{64}$/);
    const days = (Date.parse(out.expiresAt) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(4.9);
    expect(days).toBeLessThanOrEqual(5);
    const list = await cli<KeyView[]>(['key', 'list', '--vault', 'prod']);
    expect(list).toMatchObject([{ id: out.keyId, state: 'valid' }]);
    expect(JSON.stringify(list)).not.toContain(String(key['secret']));
    await cli(
      ['key', 'download', '--vault', 'prod', '--out', path('long.json'), '--valid-for', '6d'],
      2,
    );
  });

  it('3. negative: a site file with an unknown host group is refused with its line', async () => {
    const text = readFileSync(NEW_YORK_SITE, 'utf8').replace(
      '"hostGroup": "NY-Silver"',
      '"hostGroup": "NY-Bronze"',
    );
    writeFileSync(path('bad-site.json'), text);
    const line = text.slice(0, text.indexOf('NY-Bronze')).split('\n').length;
    const r = await refused([
      '--data',
      path('bad'),
      '--site',
      path('bad-site.json'),
      '--key',
      path('key.json'),
    ]);
    expect(r).toMatchObject({ exit: 2, code: 'SS_BAD_INPUT' });
    expect(r.message).toContain(`line ${line}`);
    expect(r.message).toContain('NY-Bronze');
    expect(await servers()).toEqual([]);
  });

  it('4. negative: altered, revoked and foreign-CA keys are refused, each with its code', async () => {
    const site = ['--site', NEW_YORK_SITE];
    const altered = editKey(path('key.json'), path('altered.json'), { secret: 'x'.repeat(43) });
    expect(await refused(['--data', path('n1'), ...site, '--key', altered])).toMatchObject({
      exit: 1,
      code: 'SS_KEY_ALTERED',
    });

    const { keyId } = await cli<{ keyId: string }>([
      'key',
      'download',
      '--vault',
      'prod',
      '--out',
      path('revoked.json'),
    ]);
    await cli(['key', 'revoke', '--vault', 'prod', keyId]);
    expect(
      await refused(['--data', path('n2'), ...site, '--key', path('revoked.json')]),
    ).toMatchObject({ exit: 1, code: 'SS_KEY_REVOKED' });

    const foreign = editKey(path('key.json'), path('foreign.json'), {
      caFingerprint: 'a'.repeat(64),
    });
    expect(await refused(['--data', path('n3'), ...site, '--key', foreign])).toMatchObject({
      exit: 1,
      code: 'SS_FINGERPRINT_MISMATCH',
    });
    expect(await servers()).toEqual([]);
  });

  it('5. registers VMM-NewYork; it is connected with two clouds, none synced yet', async () => {
    provider = startProvider([
      '--key',
      path('key.json'),
      '--name',
      'VMM-NewYork',
      '--sync-clouds',
      'none',
    ]);
    const started = await printed<{ server: string; identity: string }>(provider, 'the provider');
    expect(started).toMatchObject({
      server: 'VMM-NewYork',
      identity: 'secondsite://prod/provider/vmm-newyork',
    });
    await waitFor(async () => (await servers())[0]?.state === 'connected');
    expect(await servers()).toEqual([
      {
        name: 'VMM-NewYork',
        state: 'connected',
        version: '0.1.0',
        clouds: ['GoldCloud1', 'SilverCloud1'],
      },
    ]);
    expect((await clouds()).map((c) => [c.name, c.synced])).toEqual([
      ['GoldCloud1', false],
      ['SilverCloud1', false],
    ]);
    expect(statSync(path('ny/host-join-token')).mode & 0o777).toBe(0o600);
  });

  it('6. syncs GoldCloud1 with a job; the other vault sees nothing', async () => {
    const job = await cli<JobView>([
      'cloud',
      'sync',
      '--vault',
      'prod',
      '--server',
      'VMM-NewYork',
      '--cloud',
      'GoldCloud1',
    ]);
    expect(job).toMatchObject({ type: 'cloud.sync', state: 'succeeded' });
    expect(await clouds()).toEqual([
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
        hostGroups: [],
        synced: false,
        policy: null,
        pairedWith: null,
      },
    ]);
    expect(await servers('dr')).toEqual([]);
    expect(await clouds('dr')).toEqual([]);
  });

  it('7. negative: a second provider on the same data folder is refused', async () => {
    const r = await refused(['--data', path('ny'), '--site', NEW_YORK_SITE]);
    expect(r).toMatchObject({ exit: 1, code: 'SS_DATA_FOLDER_LOCKED' });
    expect((await servers())[0]?.state).toBe('connected');
  });

  it('8. stops on SIGTERM (disconnected) and restarts without the key', async () => {
    provider!.child.kill('SIGTERM');
    expect(await provider!.exited).toBe(0);
    await waitFor(async () => (await servers())[0]?.state === 'disconnected');
    provider = startProvider();
    await printed(provider, 'the restarted provider');
    await waitFor(async () => (await servers())[0]?.state === 'connected');
  });

  it('9. reconnects by itself after the coordinator is killed and restarted', async () => {
    const coordinator = daemons.find((d) => d.stdout().includes(url))!;
    coordinator.child.kill('SIGKILL');
    await coordinator.exited;
    await startCoordinator(new URL(url).host);
    await waitFor(async () => (await servers())[0]?.state === 'connected', { timeoutMs: 60_000 });
    const jobs = await cli<JobView[]>(['job', 'list', '--vault', 'prod']);
    expect(jobs.filter((j) => j.type === 'provider.register').map((j) => j.state)).toEqual([
      'succeeded',
    ]);
  });

  it('10. registers VMM-Chicago with a single-use key bound to its name; all its clouds sync', async () => {
    await cli([
      'key',
      'download',
      '--vault',
      'prod',
      '--out',
      path('chicago-key.json'),
      '--single-use',
      '--server',
      'VMM-Chicago',
    ]);
    const chicago = daemon([
      'provider',
      'start',
      '--data',
      path('chi'),
      '--site',
      CHICAGO_SITE,
      '--key',
      path('chicago-key.json'),
      '--listen',
      '127.0.0.1:0',
      '--json',
    ]);
    await printed(chicago, 'the Chicago provider');
    await waitFor(
      async () =>
        (await servers()).every((s) => s.state === 'connected') && (await servers()).length === 2,
      // Registration is a job and a first cloud sync; on a loaded 2-core CI machine both
      // providers may take a while to report connected.
      { timeoutMs: 90_000, what: 'both providers connected' },
    );
    expect((await servers()).map((s) => s.name)).toEqual(['VMM-Chicago', 'VMM-NewYork']);
    expect((await clouds()).filter((c) => c.server === 'VMM-Chicago')).toEqual([
      {
        server: 'VMM-Chicago',
        name: 'GoldCloud2',
        hostGroups: ['CHI-Gold'],
        synced: true,
        policy: null,
        pairedWith: null,
      },
      {
        server: 'VMM-Chicago',
        name: 'SilverCloud2',
        hostGroups: ['CHI-Silver'],
        synced: true,
        policy: null,
        pairedWith: null,
      },
    ]);
    // Negative: the used single-use key cannot register another server.
    const again = await refused([
      '--data',
      path('chi2'),
      '--site',
      CHICAGO_SITE,
      '--key',
      path('chicago-key.json'),
    ]);
    expect(again).toMatchObject({ exit: 1, code: 'SS_KEY_USED' });
  });
});
