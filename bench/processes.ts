/** Child processes for benchmarks: servers that announce readiness, commands that are timed. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';

export interface Served {
  uri: string;
  stop(): Promise<void>;
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
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    const { uri } = JSON.parse(line) as { uri: string };
    return { uri, stop: () => stopChild(child) };
  }
  throw new Error('benchmark server exited before announcing its URI');
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
