/** Child processes for benchmarks: servers that announce readiness, commands that are timed. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';

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
