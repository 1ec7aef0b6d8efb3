/**
 * Runs a recovery plan's script action on the coordinator's machine (R28).
 *
 * - The script is executed directly (no shell), as the coordinator's user, in its own process
 *   group, with the coordinator's environment plus SECONDSITE_PLAN, SECONDSITE_FAILOVER_TYPE
 *   (test | planned | unplanned | commit | reverse | cleanup-test), SECONDSITE_GROUP,
 *   SECONDSITE_ACTION (before | after) and SECONDSITE_JOB.
 * - stdout and stderr go into one buffer of which the last OUTPUT_TAIL_BYTES are kept; that
 *   tail is the step's result (success) or in the error's details (failure).
 * - Exit 0 succeeds. A non-zero exit, death by a signal, a script that cannot start, or the
 *   timeout fails with SS_SCRIPT_FAILED naming the exit code (or signal) and the output's tail.
 * - On timeout or abort (job cancel, coordinator shutdown) the whole process group gets
 *   SIGTERM, then SIGKILL after KILL_GRACE_MS, so children the script started die with it.
 *   The promise settles only once the script itself has exited.
 *
 * A script step that was running when the coordinator died runs again after the restart:
 * plan scripts must be safe to run twice (docs/coordinator.md, "Recovery plans").
 */
import { spawn } from 'node:child_process';
import { SecondsiteError } from '../../common/errors/errors.ts';

/** 64 KiB: a screenful of a failing script's last words is what a person needs to act. */
export const OUTPUT_TAIL_BYTES = 64 * 1024;
/** How long output is still read after the script exited (from children it left running). */
const OUTPUT_DRAIN_MS = 1_000;
/** Time between SIGTERM and SIGKILL for a script being stopped. */
export const KILL_GRACE_MS = 5_000;

export interface ScriptRun {
  readonly path: string;
  readonly timeoutMs: number;
  readonly env: {
    readonly plan: string;
    readonly failoverType: string;
    readonly group: number;
    readonly side: 'before' | 'after';
    readonly job: string;
  };
  readonly signal: AbortSignal;
  /** Tests only: a shorter grace before SIGKILL. @default KILL_GRACE_MS */
  readonly killGraceMs?: number;
}

export interface ScriptResult {
  readonly script: string;
  readonly exitCode: number;
  readonly durationMs: number;
  /** The last OUTPUT_TAIL_BYTES of stdout and stderr, interleaved as they arrived. */
  readonly output: string;
  readonly outputTruncated: boolean;
}

/** Keeps the last `limit` bytes written to it. */
class Tail {
  private chunks: Buffer[] = [];
  private bytes = 0;
  truncated = false;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.bytes - (this.chunks[0]?.length ?? 0) >= this.limit) {
      this.bytes -= this.chunks.shift()?.length ?? 0;
      this.truncated = true;
    }
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    if (all.length <= this.limit) return all.toString('utf8');
    this.truncated = true;
    return all.subarray(all.length - this.limit).toString('utf8');
  }
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

export function runScript(run: ScriptRun): Promise<ScriptResult> {
  run.signal.throwIfAborted();
  const started = Date.now();
  const tail = new Tail(OUTPUT_TAIL_BYTES);
  const child = spawn(run.path, [], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      SECONDSITE_PLAN: run.env.plan,
      SECONDSITE_FAILOVER_TYPE: run.env.failoverType,
      SECONDSITE_GROUP: String(run.env.group),
      SECONDSITE_ACTION: run.env.side,
      SECONDSITE_JOB: run.env.job,
    },
  });
  child.stdout.on('data', (c: Buffer) => tail.push(c));
  child.stderr.on('data', (c: Buffer) => tail.push(c));

  return new Promise<ScriptResult>((resolve, reject) => {
    let stopping: 'timeout' | 'abort' | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let spawnError: Error | undefined;
    const stop = (why: 'timeout' | 'abort'): void => {
      if (stopping !== undefined) return;
      stopping = why;
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(
        () => killGroup(child.pid, 'SIGKILL'),
        run.killGraceMs ?? KILL_GRACE_MS,
      );
    };
    const timer = setTimeout(() => stop('timeout'), run.timeoutMs);
    const onAbort = (): void => stop('abort');
    run.signal.addEventListener('abort', onAbort, { once: true });

    child.on('error', (e) => (spawnError = e));
    // 'close' waits for stdout and stderr to end; a service the script started in the
    // background may hold them open forever. Once the script itself exited, stop listening.
    child.on('exit', () => {
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, OUTPUT_DRAIN_MS).unref();
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      // A stopped script's children must not outlive it. A script that ended by itself may
      // have started a service on purpose: that is left alone.
      if (stopping !== undefined) killGroup(child.pid, 'SIGKILL');
      run.signal.removeEventListener('abort', onAbort);
      const durationMs = Date.now() - started;
      const output = tail.text();
      const base = { script: run.path, durationMs, output, outputTruncated: tail.truncated };
      if (stopping === 'abort') {
        reject(run.signal.reason ?? new SecondsiteError('SS_CANCELLED', 'script stopped'));
        return;
      }
      if (stopping === undefined && spawnError === undefined && code === 0) {
        resolve({ ...base, exitCode: 0 });
        return;
      }
      const why =
        stopping === 'timeout'
          ? `did not finish within ${Math.round(run.timeoutMs / 1000)} s and was stopped`
          : spawnError !== undefined
            ? `could not start: ${spawnError.message}`
            : code !== null
              ? `exited with code ${code}`
              : `was killed by ${signal ?? 'a signal'}`;
      reject(
        new SecondsiteError('SS_SCRIPT_FAILED', `script ${run.path} ${why}`, {
          ...base,
          exitCode: code,
          signal,
          timedOut: stopping === 'timeout',
        }),
      );
    });
  });
}
