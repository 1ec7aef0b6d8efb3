import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CloudView, ServerView, VmView } from '../../../common/api-client/index.ts';
import { CHICAGO_SITE, NEW_YORK_SITE } from '../../helpers/provider-lab.ts';
import {
  cliJson,
  printedJson,
  runCli,
  startDaemon,
  type Daemon,
} from '../../helpers/secondsite-cli.ts';
import { waitFor } from '../../helpers/wait-for.ts';

const NY_IP = '127.0.1.1';
const CHI_IP = '127.0.2.1';

let dir: string;
const daemons: Daemon[] = [];
const hosts: Record<string, Daemon> = {};
const providerAt: Record<string, string> = {};
const path = (name: string): string => join(dir, name);
const env = (): NodeJS.ProcessEnv => ({ SECONDSITE_CONFIG: path('coordinator/admin.json') });

function daemon(args: string[]): Daemon {
  const d = startDaemon(args, { env: { SECONDSITE_HEARTBEAT_MS: '300' } });
  daemons.push(d);
  return d;
}

const printed = printedJson;
const cli = <T>(args: string[], code = 0): Promise<T> => cliJson<T>(args, env(), code);

const vms = (...extra: string[]): Promise<VmView[]> =>
  cli(['vm', 'list', '--vault', 'prod', ...extra]);

/** A copy of a deploy/ site file with its storage paths moved into the temp folder. */
function siteCopy(
  from: string,
  to: string,
  patch: (site: Record<string, unknown>) => void,
): string {
  const text = readFileSync(from, 'utf8').replaceAll('/srv/', `${path('srv')}/`);
  const site = JSON.parse(text) as Record<string, unknown>;
  patch(site);
  writeFileSync(path(to), JSON.stringify(site, null, 2));
  return path(to);
}

/** A port free on `ip` now, so a provider restarted later listens where its hosts look. */
function freePort(ip: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, ip, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

const providers: Record<string, Daemon> = {};

async function startProvider(
  name: string,
  site: string,
  listen: string,
  key = true,
): Promise<void> {
  if (key) await cli(['key', 'download', '--vault', 'prod', '--out', path(`${name}-key.json`)]);
  const d = daemon([
    'provider',
    'start',
    '--data',
    path(name),
    '--site',
    site,
    ...(key ? ['--key', path(`${name}-key.json`)] : []),
    '--listen',
    listen,
    '--json',
  ]);
  providers[name] = d;
  providerAt[name] = (await printed<{ hosts: string }>(d, `provider ${name}`)).hosts;
}

function hostArgs(name: string, provider: string, ip: string, token?: string): string[] {
  return [
    'host',
    'start',
    '--data',
    path(name),
    '--name',
    name,
    '--provider',
    providerAt[provider] ?? '',
    ...(token === undefined ? [] : ['--token-file', token]),
    '--address',
    ip,
    '--cert-port',
    '0',
    '--ticket-port',
    '0',
  ];
}

function qemuIo(uri: string, ...cmds: string[]): { code: number | null; out: string } {
  const r = spawnSync('qemu-io', ['-f', 'raw', uri, ...cmds.flatMap((c) => ['-c', c])], {
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

/** A `host start` that must fail: exit code, error code, and whether it stored an identity. */
async function refusedHost(args: string[]): Promise<{ exit: number | null; stderr: string }> {
  const r = await runCli(args);
  return { exit: r.code, stderr: r.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ss-e2e-2s-'));
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

describe('two sites', () => {
  it('1. starts the coordinator and creates the vault', async () => {
    const d = daemon([
      'coordinator',
      'start',
      '--data',
      path('coordinator'),
      '--listen',
      '127.0.0.1:0',
      '--json',
    ]);
    await printed(d, 'the coordinator');
    await cli(['vault', 'create', 'prod']);
  });

  it('2. registers New York on 127.0.1.1 and Chicago on 127.0.2.1', async () => {
    const ny = siteCopy(NEW_YORK_SITE, 'new-york.json', () => undefined);
    const chi = siteCopy(CHICAGO_SITE, 'chicago.json', (s) => {
      s['vms'] = [
        {
          name: 'VM3',
          host: 'chi-hv1',
          state: 'running',
          disks: [{ size: '64MiB', classification: 'GOLD' }],
          nics: [{ network: 'VMNetwork1 Chicago', subnet: 'web' }],
        },
      ];
    });
    const [nyPort, chiPort] = await Promise.all([freePort(NY_IP), freePort(CHI_IP)]);
    await Promise.all([
      startProvider('ny', ny, `${NY_IP}:${nyPort}`),
      startProvider('chi', chi, `${CHI_IP}:${chiPort}`),
    ]);
    expect(providerAt['ny']).toMatch(/^127\.0\.1\.1:\d+$/);
    expect(providerAt['chi']).toMatch(/^127\.0\.2\.1:\d+$/);
  });

  it('3. server list shows both connected; cloud list shows their four clouds synced', async () => {
    await waitFor(async () => {
      const s = await cli<ServerView[]>(['server', 'list', '--vault', 'prod']);
      return s.length === 2 && s.every((x) => x.state === 'connected');
    });
    const clouds = await cli<CloudView[]>(['cloud', 'list', '--vault', 'prod']);
    expect(clouds.map((c) => [c.server, c.name, c.synced])).toEqual([
      ['VMM-Chicago', 'GoldCloud2', true],
      ['VMM-Chicago', 'SilverCloud2', true],
      ['VMM-NewYork', 'GoldCloud1', true],
      ['VMM-NewYork', 'SilverCloud1', true],
    ]);
  });

  it('4. negative: a host with a bad token, or the token of another provider, is refused', async () => {
    const token = readFileSync(path('ny/host-join-token'), 'utf8').trim();
    writeFileSync(path('bad-token'), `${token.slice(0, -4)}AAAA\n`);
    const bad = await refusedHost(hostArgs('ny-hv2', 'ny', NY_IP, path('bad-token')));
    expect(bad.exit).toBe(1);
    expect(bad.stderr).toContain('SS_KEY_INVALID');
    const other = await refusedHost(hostArgs('ny-hv2', 'ny', NY_IP, path('chi/host-join-token')));
    expect(other.exit).toBe(1);
    expect(other.stderr).toContain('SS_FINGERPRINT_MISMATCH');
    expect(existsSync(path('ny-hv2/identity/host.json'))).toBe(false);
  });

  it('5. enrols one host per site with its join token; the declared VMs appear running', async () => {
    hosts['ny-hv1'] = daemon(hostArgs('ny-hv1', 'ny', NY_IP, path('ny/host-join-token')));
    hosts['chi-hv1'] = daemon(hostArgs('chi-hv1', 'chi', CHI_IP, path('chi/host-join-token')));
    const list = await waitFor(
      async () => {
        for (const [name, h] of Object.entries(hosts)) {
          if (h.child.exitCode !== null) throw new Error(`${name} exited: ${h.stderr()}`);
        }
        const l = await vms();
        return l.length === 2 && l.every((v) => v.state === 'running') ? l : undefined;
      },
      { what: 'VM1 and VM3 running in vm list', timeoutMs: 60_000 },
    );
    expect(list.map((v) => [v.server, v.name, v.cloud, v.host, v.role])).toEqual([
      ['VMM-Chicago', 'VM3', 'GoldCloud2', 'chi-hv1', 'none'],
      ['VMM-NewYork', 'VM1', 'GoldCloud1', 'ny-hv1', 'none'],
    ]);
    for (const v of list) {
      expect(v.disks[0]?.nbd).toMatch(/^nbd\+unix:\/\/\/VM\d-0\?socket=\/.+\.sock$/);
    }
  });

  it('6. vm show gives the CLI.md document; qemu-io writes through its NBD URI and reads back', async () => {
    const vm = await cli<VmView>(['vm', 'show', '--vault', 'prod', 'VMM-NewYork/VM1']);
    expect(vm).toEqual({
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
          nbd: `nbd+unix:///VM1-0?socket=${path('ny-hv1/run/VM1-0.sock')}`,
        },
      ],
      nics: [{ network: 'VMNetwork1 NewYork', subnet: 'web' }],
    });
    const uri = vm.disks[0]?.nbd ?? '';
    expect(qemuIo(uri, 'write -P 0x5a 1M 256k', 'flush').code).toBe(0);
    const back = qemuIo(uri, 'read -P 0x5a 1M 256k');
    expect(back.code).toBe(0);
    expect(back.out).not.toMatch(/Pattern verification failed/);
  });

  it('7. one server, a primary and a secondary cloud: --cloud picks the VMs of each', async () => {
    expect((await vms('--cloud', 'VMM-NewYork/GoldCloud1')).map((v) => v.name)).toEqual(['VM1']);
    expect(await vms('--cloud', 'VMM-NewYork/SilverCloud1')).toEqual([]);
    await cli(['vm', 'show', '--vault', 'prod', 'VMM-NewYork/VM3'], 1);
  });

  it('8. the host restarts without its token, brings VM1 back and reports new VMs', async () => {
    const h = hosts['ny-hv1'];
    h?.child.kill('SIGTERM');
    expect(await h?.exited).toBe(0);
    hosts['ny-hv1'] = daemon(hostArgs('ny-hv1', 'ny', NY_IP));
    const sock = path('ny-hv1/run/VM1-0.sock');
    await waitFor(() => existsSync(sock), { what: 'VM1 served again', timeoutMs: 60_000 });
    const back = qemuIo(`nbd+unix:///VM1-0?socket=${sock}`, 'read -P 0x5a 1M 256k');
    expect(back.code).toBe(0);
    expect(back.out).not.toMatch(/Pattern verification failed/);
    // A VM made locally reaches the coordinator: the restarted host reports again.
    const made = await runCli([
      'host',
      'vm',
      'create',
      '--data',
      path('ny-hv1'),
      'local1',
      '--disk',
      '16MiB',
    ]);
    expect(made.code, made.stderr).toBe(0);
    const local = await waitFor(async () => (await vms()).find((v) => v.name === 'local1'), {
      what: 'local1 in vm list',
    });
    expect(local).toMatchObject({ server: 'VMM-NewYork', host: 'ny-hv1', state: 'stopped' });
    expect(local.disks).toEqual([{ index: 0, sizeBytes: 16 * 1024 * 1024, nbd: null }]);
  });

  it('9. the New York provider restarts; its host reconnects by itself and reports again', async () => {
    const p = providers['ny'];
    p?.child.kill('SIGTERM');
    expect(await p?.exited).toBe(0);
    // Made while the provider is down: only a reconnected host can report it.
    const made = await runCli([
      'host',
      'vm',
      'create',
      '--data',
      path('ny-hv1'),
      'local2',
      '--disk',
      '16MiB',
    ]);
    expect(made.code, made.stderr).toBe(0);
    await startProvider('ny', path('new-york.json'), providerAt['ny'] ?? '', false);
    await waitFor(async () => (await vms()).some((v) => v.name === 'local2'), {
      what: 'local2 in vm list after the provider restart',
      timeoutMs: 60_000,
    });
    expect(hosts['ny-hv1']?.child.exitCode).toBeNull();
  });
});
