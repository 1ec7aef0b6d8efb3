/** Child processes for benchmarks: servers that announce readiness, commands that are timed. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
    ['bin/run-ts.mjs', 'bench/serve-export.ts', dir, mode, String(size)],
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
 * the replication scenarios share (delta-1pct builds the same by hand).
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
