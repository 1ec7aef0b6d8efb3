/**
 * The demo's child processes: each one a real `secondsite` process (bin/secondsite.mjs) with
 * its stderr (pino JSON lines) in a log file of the demo folder. Each runs in its own process
 * group, so a terminal's Ctrl-C reaches only the demo, which then stops them in order.
 *
 * Lifecycle of a DemoProcess: running → stopping (SIGTERM sent) → exited; a process that has
 * not exited STOP_TIMEOUT_MS after SIGTERM gets SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SecondsiteError } from '../../common/errors/errors.ts';
import { NODE_FLAGS } from '../../agent/host/main.ts';

export const BIN = fileURLToPath(new URL('../../bin/secondsite.mjs', import.meta.url));

/** Agents flush journals and close exports on SIGTERM; 15 s is far beyond what that takes. */
export const STOP_TIMEOUT_MS = 15_000;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface DemoProcess {
  /** What the administrator reads: "coordinator", "provider VMM-NewYork", "host ny-hv1". */
  readonly name: string;
  readonly log: string;
  readonly child: ChildProcess;
  /** Set once the demo itself asked the process to stop. */
  stopping: boolean;
  readonly exited: Promise<Exit>;
  stdout(): string;
}

export function startProcess(
  name: string,
  args: readonly string[],
  opts: { log: string; env?: NodeJS.ProcessEnv },
): DemoProcess {
  const fd = openSync(opts.log, 'a', 0o600);
  const child = spawn(process.execPath, [...NODE_FLAGS, BIN, ...args], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', fd],
    detached: true,
  });
  closeSync(fd); // the child holds its own copy
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<Exit>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { name, log: opts.log, child, stopping: false, exited, stdout: () => out };
}

export const isRunning = (p: DemoProcess): boolean =>
  p.child.exitCode === null && p.child.signalCode === null;

/** A pino line as a person reads it: its message and the fields that say why. */
function readable(line: string): string {
  try {
    const j = JSON.parse(line) as Record<string, unknown>;
    const err = j['err'] as { message?: unknown } | undefined;
    const why = [j['code'], j['why'], err?.message].filter((v) => typeof v === 'string');
    return `  ${String(j['msg'] ?? '')}${why.length > 0 ? ` (${why.join(': ')})` : ''}`;
  } catch {
    return `  ${line}`;
  }
}

/** The last lines of a process's log, for an error message. */
export function logTail(p: DemoProcess, lines = 3): string {
  try {
    const all = readFileSync(p.log, 'utf8').trimEnd().split('\n').filter(Boolean);
    return all.slice(-lines).map(readable).join('\n');
  } catch {
    return '';
  }
}

/** `work`, or SS_TIMEOUT after `ms`: a question to a process that died must not hang the end. */
export async function bounded<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new SecondsiteError('SS_TIMEOUT', `no answer for ${what} within ${ms / 1000} s`)),
      ms,
    );
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** An error saying a process ended, with where to read why. */
export function exitedError(p: DemoProcess): SecondsiteError {
  const how = p.child.signalCode ?? `code ${p.child.exitCode}`;
  const tail = logTail(p);
  return new SecondsiteError(
    'SS_UNAVAILABLE',
    `the ${p.name} process exited (${how}); read ${p.log}${tail ? `\n${tail}` : ''}`,
    { process: p.name, log: p.log },
  );
}

/** Polls `probe` every `everyMs` until it returns a value, `signal` aborts, or time runs out. */
export async function poll<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  o: { signal: AbortSignal; timeoutMs: number; everyMs?: number; log?: string },
): Promise<T> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    if (o.signal.aborted)
      throw new SecondsiteError('SS_CANCELLED', `stopped while waiting for ${what}`);
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) {
      throw new SecondsiteError(
        'SS_TIMEOUT',
        `gave up waiting for ${what} after ${Math.round(o.timeoutMs / 1000)} s${o.log ? `; read ${o.log}` : ''}`,
        { what },
      );
    }
    await new Promise((r) => setTimeout(r, o.everyMs ?? 200));
  }
}

/** The one JSON document a process prints on stdout once it is up (`start --json`). */
export function printedJson<T>(
  p: DemoProcess,
  signal: AbortSignal,
  timeoutMs = 60_000,
): Promise<T> {
  return poll(
    `the ${p.name} to start`,
    () => {
      if (!isRunning(p)) throw exitedError(p);
      const text = p.stdout();
      if (!text.includes('}')) return undefined;
      try {
        return JSON.parse(text) as T;
      } catch {
        return undefined; // printed in more than one chunk: not whole yet
      }
    },
    { signal, timeoutMs, log: p.log },
  );
}

/**
 * Stops a process with SIGTERM, waits for its exit (SIGKILL after STOP_TIMEOUT_MS); returns a
 * problem to report, or undefined when it stopped cleanly.
 */
export async function stopProcess(p: DemoProcess): Promise<string | undefined> {
  const wasRunning = isRunning(p);
  p.stopping = true;
  if (!wasRunning) {
    const e = await p.exited;
    return `the ${p.name} had already exited (${e.signal ?? `code ${e.code}`}); read ${p.log}`;
  }
  p.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS);
  });
  const first = await Promise.race([p.exited, timedOut]);
  clearTimeout(timer);
  if (first === 'timeout') {
    p.child.kill('SIGKILL');
    await p.exited;
    return `the ${p.name} did not stop within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM and was killed; read ${p.log}`;
  }
  if (first.code !== 0 && first.signal !== 'SIGTERM') {
    return `the ${p.name} stopped with ${first.signal ?? `code ${first.code}`}; read ${p.log}`;
  }
  return undefined;
}
