/**
 * Recovery-plan script actions run as real processes: the environment they get, failure on a
 * non-zero exit with the output's tail, the timeout and an abort killing the whole process
 * group (a child the script started dies too).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OUTPUT_TAIL_BYTES, runScript } from '../../coordinator/plans/script-action.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { writeScript } from '../helpers/plan-scripts.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ss-plan-script-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const env = {
  plan: 'Shop',
  failoverType: 'planned',
  group: 2,
  side: 'before',
  job: 'j-1',
} as const;
const run = (path: string, timeoutMs = 30_000, signal = new AbortController().signal) =>
  runScript({ path, timeoutMs, env, signal, killGraceMs: 200 });

/** A pid runs (a zombie waiting for its reaper counts as dead: it runs nothing any more). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S …"; the state letter follows the last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('plan script action', () => {
  it('runs a passing script with the plan, failover type and group in its environment', async () => {
    const out = join(dir, 'env.txt');
    const script = writeScript(
      dir,
      'ok.sh',
      `echo "$SECONDSITE_PLAN $SECONDSITE_FAILOVER_TYPE $SECONDSITE_GROUP $SECONDSITE_ACTION" > '${out}'\necho started; echo warn >&2`,
    );
    const result = await run(script);
    expect(readFileSync(out, 'utf8')).toBe('Shop planned 2 before\n');
    expect(result).toMatchObject({
      script,
      exitCode: 0,
      output: 'started\nwarn\n',
      outputTruncated: false,
    });
  });

  it('fails on exit 3 with the exit code and the tail of a long output', async () => {
    // 200 000 numbered lines: far more than the kept tail.
    const script = writeScript(dir, 'fail.sh', 'seq 1 200000\necho "disk full" >&2\nexit 3');
    const e = await run(script).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toMatchObject({
      code: 'SS_SCRIPT_FAILED',
      details: { exitCode: 3, timedOut: false, outputTruncated: true },
    });
    const { output } = (e as { details: { output: string } }).details;
    expect(Buffer.byteLength(output)).toBeLessThanOrEqual(OUTPUT_TAIL_BYTES);
    expect(output.endsWith('199999\n200000\ndisk full\n')).toBe(true);
    expect(output).not.toContain('\n1\n2\n3\n');
    expect((e as Error).message).toMatch(/exited with code 3/);
  });

  it('stops a script at its timeout, with the children it started', async () => {
    const pidFile = join(dir, 'child.pid');
    const script = writeScript(
      dir,
      'hang.sh',
      `sleep 300 &\necho $! > '${pidFile}'\necho waiting\nwait`,
    );
    const e = await run(script, 500).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toMatchObject({
      code: 'SS_SCRIPT_FAILED',
      details: { timedOut: true, output: 'waiting\n' },
    });
    const child = Number(readFileSync(pidFile, 'utf8'));
    await waitFor(() => !alive(child), { what: 'the script’s child to be killed' });
  });

  it('kills the process group when the step is aborted', async () => {
    const pidFile = join(dir, 'child.pid');
    const script = writeScript(dir, 'long.sh', `sleep 300 &\necho $! > '${pidFile}'\nwait`);
    const abort = new AbortController();
    const running = run(script, 60_000, abort.signal).then(
      () => undefined,
      (err: unknown) => err,
    );
    await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '');
    abort.abort(new Error('cancelled'));
    expect(await running).toMatchObject({ message: 'cancelled' });
    const child = Number(readFileSync(pidFile, 'utf8'));
    await waitFor(() => !alive(child), { what: 'the script’s child to be killed' });
  });

  it('fails a script that cannot start', async () => {
    await expect(run(join(dir, 'missing.sh'))).rejects.toMatchObject({
      code: 'SS_SCRIPT_FAILED',
      message: expect.stringMatching(/could not start.*ENOENT/),
    });
  });
});

describe('plan script action: background children', () => {
  it('ends when the script exits, even if a child it left running holds its output', async () => {
    const pidFile = join(dir, 'daemon.pid');
    const script = writeScript(dir, 'daemon.sh', `sleep 300 &\necho $! > '${pidFile}'\necho up`);
    const result = await run(script);
    expect(result).toMatchObject({ exitCode: 0, output: 'up\n' });
    const daemon = Number(readFileSync(pidFile, 'utf8'));
    expect(alive(daemon)).toBe(true);
    process.kill(daemon, 'SIGKILL');
  });
});
