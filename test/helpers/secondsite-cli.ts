/**
 * Drives the real `secondsite` executable as child processes, for e2e scenarios: one-shot
 * commands (runCli) and long-running processes (startDaemon) that tests stop or kill -9.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../../agent/host/node-flags.ts';
import { waitFor } from './wait-for.ts';

export const SECONDSITE_BIN = fileURLToPath(new URL('../../bin/secondsite.mjs', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...NODE_FLAGS, SECONDSITE_BIN, ...args], {
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Parses a command's --json stdout, with the output in the error when it is not JSON. */
export function jsonOf<T = unknown>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}):\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
  }
}

export interface Daemon {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or signal name) once the process has ended. */
  readonly exited: Promise<number | string | null>;
}

/**
 * The node arguments before the script of every long-running child process a test or benchmark
 * starts (a host agent, or a benchmark's stand-in for one): the product's NODE_FLAGS, as the
 * secondsite executable's shebang gives them, then BENCH_CHILD_NODE_ARGS (space-separated),
 * for profiling them: e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` (Node refuses --cpu-prof in
 * NODE_OPTIONS).
 */
export function childNodeArgs(): string[] {
  const extra = (process.env['BENCH_CHILD_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  return [...NODE_FLAGS, ...extra];
}

export function startDaemon(
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Daemon {
  const child = spawn(process.execPath, [...childNodeArgs(), SECONDSITE_BIN, ...args], {
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal)),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Waits for the one JSON document a daemon prints on stdout once it is up. */
export function printedJson<T>(d: Daemon, what: string): Promise<T> {
  return waitFor(
    () => {
      if (d.child.exitCode !== null) throw new Error(`${what} exited: ${d.stderr()}`);
      return d.stdout().includes('}') ? (JSON.parse(d.stdout()) as T) : undefined;
    },
    { what, timeoutMs: 60_000 },
  );
}

/** Runs `secondsite ARGS --json`, requires exit code `code`, and parses its stdout. */
export async function cliJson<T>(args: string[], env: NodeJS.ProcessEnv, code = 0): Promise<T> {
  const r = await runCli([...args, '--json'], { env });
  if (r.code !== code) {
    // A failed job prints itself on stdout: its error says why.
    throw new Error(
      `secondsite ${args.join(' ')}: exit ${r.code}, expected ${code}\n${r.stderr}${r.stdout.slice(0, 4000)}`,
    );
  }
  return jsonOf<T>(r);
}
