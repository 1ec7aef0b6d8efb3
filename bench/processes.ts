/** Child processes for benchmarks: servers that announce readiness, commands that are timed. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createApiClient, type ApiClient, type ItemView } from '../common/api-client/index.ts';
import { NbdClient } from '../common/nbd/client.ts';
import { fetchTrusting, loadAdminConfig } from '../cli/admin-config.ts';
import { DemoFolder, VAULT as DEMO_VAULT, type DemoVm } from '../cli/demo/layout.ts';
import { poll, stopProcess, type DemoProcess } from '../cli/demo/processes.ts';
import { createPolicyAndMaps } from '../cli/demo/setup.ts';
import { bringUpSites } from '../cli/demo/sites.ts';
import { childNodeArgs } from '../test/helpers/secondsite-cli.ts';
import { createTestCa } from '../test/helpers/test-ca.ts';
import {
  VAULT,
  hostVm,
  replicationPort,
  startHostProcess,
  writeHostTls,
  type HostProcess,
} from '../test/helpers/replication-lab.ts';

export interface Served {
  uri: string;
  stop(): Promise<void>;
  /** Our journaled server only: cut a recovery point; resolves with how long it took (ms). */
  cut?(): Promise<number>;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

/** Our NBD server in a child process (bench/serve-export.ts). */
export async function serveOurs(
  dir: string,
  mode: 'journal' | 'raw',
  size: number,
): Promise<Served> {
  const child = spawn(
    process.execPath,
    [...childNodeArgs(), 'bin/run-ts.mjs', 'bench/serve-export.ts', dir, mode, String(size)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    const r = await lines.next();
    if (r.done) throw new Error('benchmark server exited before answering');
    return JSON.parse(r.value as string) as Record<string, unknown>;
  };
  const { uri } = (await next()) as { uri: string };
  return {
    uri,
    stop: () => stopChild(child),
    cut: async () => {
      child.stdin!.write('cut\n');
      return (await next())['cutMs'] as number;
    },
  };
}

/** qemu-nbd serving a plain raw file: the reference NBD server. */
export async function serveQemuNbd(file: string, socket: string): Promise<Served> {
  const child = spawn(
    'qemu-nbd',
    ['-f', 'raw', '-t', '-e', '8', '-x', 'disk0', '-k', socket, file],
    {
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const deadline = Date.now() + 10_000;
  while (!existsSync(socket)) {
    if (Date.now() > deadline) throw new Error('qemu-nbd did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  return { uri: `nbd+unix:///disk0?socket=${socket}`, stop: () => stopChild(child) };
}

/** Runs a command to completion; resolves with its wall time in seconds. */
export async function timed(cmd: string, args: string[]): Promise<number> {
  const start = process.hrtime.bigint();
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${code}`);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

export interface PairedHosts {
  /** The primary host agent (hv-a on 127.0.1.1) with VM `vm1` created, paired and running. */
  a: HostProcess;
  /** The replica host agent (hv-b on 127.0.2.1). */
  b: HostProcess;
  stop(): Promise<void>;
}

/**
 * Two `secondsite host start --standalone` processes on loopback (127.0.1.1, 127.0.2.1) with
 * test-CA certificates and one VM `vm1` paired hv-a → hv-b, protected and started: the setup
 * the replication scenarios share.
 */
export async function pairHostProcesses(
  dir: string,
  size: number,
  o: {
    /** `--compression` of the pairing. @default off */
    compression?: string;
    /** `vm protect --copy-frequency`. @default the product's default */
    copyFrequency?: string;
    /** Extra `host start` flags of the primary (e.g. --journal-cap, --dev-copy-frequency). */
    primaryFlags?: readonly string[];
  } = {},
): Promise<PairedHosts> {
  const ca = createTestCa();
  const port = await replicationPort(['127.0.1.1', '127.0.2.1']);
  writeHostTls(ca, 'hv-a', join(dir, 'a', 'identity'));
  writeHostTls(ca, 'hv-b', join(dir, 'b', 'identity'));
  const a = await startHostProcess({
    name: 'hv-a',
    data: join(dir, 'a'),
    address: '127.0.1.1',
    port,
    extra: o.primaryFlags ?? [],
  });
  const b = await startHostProcess({
    name: 'hv-b',
    data: join(dir, 'b'),
    address: '127.0.2.1',
    port,
  }).catch(async (e: unknown) => {
    await a.kill('SIGTERM');
    throw e;
  });
  const stop = async (): Promise<void> => {
    await a.kill('SIGTERM');
    await b.kill('SIGTERM');
    keepHostLogs(a, b);
  };
  try {
    const disk = String(size);
    const common = ['--vault', VAULT];
    await hostVm(
      b.data,
      'pair',
      'vm1',
      '--role',
      'replica',
      '--peer-host',
      'hv-a',
      '--peer-address',
      `127.0.1.1:${port}`,
      '--disk',
      disk,
      ...common,
    );
    await hostVm(a.data, 'create', 'vm1', '--disk', disk);
    await hostVm(
      a.data,
      'pair',
      'vm1',
      '--role',
      'primary',
      '--compression',
      o.compression ?? 'off',
      '--peer-host',
      'hv-b',
      '--peer-address',
      `127.0.2.1:${port}`,
      ...common,
    );
    await hostVm(
      a.data,
      'protect',
      'vm1',
      ...(o.copyFrequency ? ['--copy-frequency', o.copyFrequency] : []),
    );
    await hostVm(a.data, 'start', 'vm1');
    return { a, b, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * BENCH_HOST_LOGS=DIR keeps each host agent's log (stderr) as DIR/<name>.log after the run;
 * with SECONDSITE_LOG_LEVEL=debug it carries the cut, ship and apply timings.
 */
export function keepHostLogs(...hosts: HostProcess[]): void {
  const dir = process.env['BENCH_HOST_LOGS'];
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  for (const h of hosts) writeFileSync(join(dir, `${h.name}.log`), h.daemon.stderr());
}

/**
 * The whole product on loopback, as the two-site demo builds it (cli/demo: sites.ts,
 * setup.ts): a coordinator, New York's and Chicago's providers, one host each on 127.0.1.1 /
 * 127.0.2.1, the vault, the "gold" policy (30 s copies) with its association and maps. The
 * benchmarks declare their own VMs in New York and send the demo's progress lines to stderr.
 */
export interface BenchSites {
  readonly folder: DemoFolder;
  readonly api: ApiClient;
  /** Every process started, in start order: the coordinator first. */
  readonly processes: readonly DemoProcess[];
  readonly coordinator: DemoProcess;
  /** The host agent's process by host name (ny-hv1, chi-hv1). */
  host(name: string): DemoProcess;
  /** Stops hosts, providers, then the coordinator; returns the problems it met. */
  stop(): Promise<string[]>;
}

export async function startBenchSites(
  dir: string,
  o: {
    vms: readonly DemoVm[];
    timeScale: number;
    say: (line: string) => void;
    signal: AbortSignal;
    hostEnv?: NodeJS.ProcessEnv;
    coordinatorEnv?: NodeJS.ProcessEnv;
  },
): Promise<BenchSites> {
  const folder = new DemoFolder(dir);
  const processes: DemoProcess[] = [];
  let api: ApiClient | undefined;
  let closeTransport = async (): Promise<void> => undefined;
  const stop = async (): Promise<string[]> => {
    const problems: string[] = [];
    for (const p of [...processes].reverse()) {
      const problem = await stopProcess(p);
      if (problem !== undefined) problems.push(problem);
    }
    await closeTransport().catch(() => undefined);
    return problems;
  };
  // The demo's lines end in "\n" and may hold several; the bench prints one per call.
  const say = (text: string): void => {
    for (const line of text.split('\n')) if (line.trim() !== '') o.say(line.trim());
  };
  try {
    await bringUpSites(
      {
        folder,
        processes,
        timeScale: o.timeScale,
        signal: o.signal,
        vms: o.vms,
        say,
        ...(o.hostEnv ? { hostEnv: o.hostEnv } : {}),
        ...(o.coordinatorEnv ? { coordinatorEnv: o.coordinatorEnv } : {}),
      },
      (adminFile) => {
        const c = connectAdmin(adminFile);
        closeTransport = c.close;
        api = c.api;
        return c.api;
      },
    );
    if (api === undefined) throw new Error('the demo set-up made no API client');
    await createPolicyAndMaps(api, o.timeScale, say);
  } catch (e) {
    await stop();
    throw e;
  }
  const coordinator = processes[0]!;
  const client = api;
  return {
    folder,
    api: client,
    processes,
    coordinator,
    host: (name) => {
      const p = processes.find((x) => x.name === `host ${name}`);
      if (p === undefined) throw new Error(`no host process ${name}`);
      return p;
    },
    stop,
  };
}

/** An API client from a coordinator's admin.json (as `secondsite --config` makes it). */
export function connectAdmin(adminFile: string): { api: ApiClient; close(): Promise<void> } {
  const config = loadAdminConfig(adminFile);
  const transport = fetchTrusting(config.caCertPem);
  const api = createApiClient({
    url: config.url,
    token: config.adminToken,
    fetch: transport.fetch,
  });
  return { api, close: () => transport.close() };
}

let clockTicks: number | undefined;

/**
 * CPU seconds (user + system) a live process has used so far: utime + stime of
 * /proc/<pid>/stat (fields 14 and 15, in clock ticks, 1/100 s on Linux). Children it waited
 * for are not included (the product's processes spawn none).
 */
export function processCpuSeconds(pid: number): number {
  clockTicks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2 (comm) is in parentheses and may hold spaces: count from the last ")".
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) {
    throw new Error(`cannot read the CPU time of process ${pid}`);
  }
  return (utime + stime) / clockTicks;
}

/** Polls the items until each of `vms` is `state`; resolves with the ms each took from `t0`. */
export async function waitItemsState(
  api: ApiClient,
  vms: readonly string[],
  o: { state: ItemView['state']; t0: number; signal: AbortSignal; timeoutMs: number },
): Promise<Map<string, number>> {
  const reached = new Map<string, number>();
  await poll(
    `${vms.length} item(s) ${o.state}`,
    async () => {
      const items = await api.listItems(DEMO_VAULT);
      const now = performance.now();
      for (const i of items) {
        if (vms.includes(i.vm) && i.state === o.state && !reached.has(i.vm)) {
          reached.set(i.vm, now - o.t0);
        }
        if (vms.includes(i.vm) && i.health === 'critical') {
          throw new Error(`${i.vm} is critical: ${i.errors.map((e) => e.message).join('; ')}`);
        }
      }
      return reached.size === vms.length ? true : undefined;
    },
    { signal: o.signal, timeoutMs: o.timeoutMs, everyMs: 100 },
  );
  return reached;
}

/**
 * Writes `bytes` of random data through a VM's NBD export in 1 MiB blocks spread evenly over
 * the disk (so the data is not one run at the start), then flushes.
 */
export async function writeSpread(uri: string, bytes: number): Promise<void> {
  const MiB = 2 ** 20;
  const nbd = await NbdClient.connect(uri);
  try {
    const blocks = Math.floor(bytes / MiB);
    const slots = Math.floor(nbd.size / MiB);
    const stride = Math.max(1, Math.floor(slots / Math.max(1, blocks)));
    const buf = randomBytes(MiB);
    for (let b = 0; b < blocks; b++) {
      buf.writeUInt32LE(b, 0);
      await nbd.write(((b * stride) % slots) * MiB, buf);
    }
    await nbd.flush();
  } finally {
    await nbd.close().catch(() => undefined);
  }
}

/** The NBD URI of a running VM's first disk, as the coordinator lists it. */
export async function nbdUri(api: ApiClient, qualified: string): Promise<string> {
  const uri = (await api.getVm(DEMO_VAULT, qualified)).disks[0]?.nbd ?? null;
  if (uri === null) throw new Error(`${qualified} has no NBD export (is it running?)`);
  return uri;
}

/**
 * The image file of disk 0 of `vm` on the demo host `host`: in the host's own data folder,
 * or in a storage location of the site (srv/<host>/<location>/<vm>/) when it was placed there.
 */
export function hostDiskFile(folder: DemoFolder, host: string, vm: string): string {
  const own = folder.path(host, 'vms', vm, 'disk-0.raw');
  if (existsSync(own)) return own;
  const srv = folder.path('srv', host);
  for (const location of existsSync(srv) ? readdirSync(srv) : []) {
    const placed = join(srv, location, vm, 'disk-0.raw');
    if (existsSync(placed)) return placed;
  }
  throw new Error(`no disk image of ${vm} on ${host} under ${folder.root}`);
}
