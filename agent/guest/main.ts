/**
 * `secondsite workload`: the stand-in guest. Validates the flags (each refusal names its flag,
 * exit 2), connects one NBD client per --nbd URI, optionally answers the guest-agent channel,
 * writes the reproducible pattern at the asked rate, prints progress on stderr and a summary
 * at the end (--json: one JSON document on stdout).
 */
import { randomInt } from 'node:crypto';
import { SecondsiteError, badInput } from '../../common/errors/errors.ts';
import { formatSize, parseDuration, parseSize } from '../../common/config/units.ts';
import { NbdClient } from '../../common/nbd/client.ts';
import { checkDisks, type CheckReport } from './check.ts';
import { connectGuestAgent } from './guest-agent-client.ts';
import { Workload, type WorkloadSettings } from './workload.ts';

/** Flags as commander hands them over. */
export interface WorkloadFlags {
  readonly nbd?: readonly string[];
  /** MB/s (10^6 bytes); 0 = unlimited. @default 10 */
  readonly rate?: string;
  /** @default 10s */
  readonly duration?: string;
  /** @default 64KiB */
  readonly blockSize?: string;
  /** @default a random seed, printed so a run can be repeated */
  readonly seed?: string;
  readonly guestAgent?: string;
  /** VM name the guest says in its hello. @default "workload" */
  readonly vm?: string;
  /** @default 4 */
  readonly queueDepth?: string;
  /** Read back every block written at the end and check it. */
  readonly verify?: boolean;
  /** Write nothing: read the disks and check every block (needs the writer's --seed). */
  readonly check?: boolean;
  readonly json?: boolean;
}

export interface WorkloadOptions extends WorkloadSettings {
  readonly nbd: readonly string[];
  readonly guestAgent?: string;
  readonly vm: string;
  readonly verify: boolean;
}

export interface WorkloadSummary {
  nbd: string[];
  seed: number;
  blockSize: number;
  queueDepth: number;
  seconds: number;
  bytesWritten: number;
  ops: number;
  mbPerSecond: number;
  freezes: number;
  selfThaws: number;
  verified?: { blocks: number; mismatches: string[] };
}

function wholeNumber(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw badInput(flag, `"${text}" must be a whole number from ${min} to ${max}`);
  }
  return n;
}

export function compileWorkloadOptions(flags: WorkloadFlags): WorkloadOptions {
  const nbd = flags.nbd ?? [];
  if (nbd.length === 0) throw badInput('--nbd', 'give at least one nbd+unix:// URI');
  for (const uri of nbd) {
    if (!uri.startsWith('nbd+unix:///') || !uri.includes('?socket=')) {
      throw badInput('--nbd', `"${uri}" is not nbd+unix:///EXPORT?socket=PATH`);
    }
  }
  const rate = Number(flags.rate ?? '10');
  if (!Number.isFinite(rate) || rate < 0) throw badInput('--rate', `"${flags.rate}" is not MB/s`);
  const blockSize = parseSize('--block-size', flags.blockSize ?? '64KiB');
  if (blockSize < 4096 || blockSize > 32 * 1024 * 1024 || blockSize % 4096 !== 0) {
    throw badInput('--block-size', 'must be a multiple of 4KiB from 4KiB to 32MiB');
  }
  const durationMs = parseDuration('--duration', flags.duration ?? '10s');
  if (durationMs <= 0) throw badInput('--duration', 'must be more than 0');
  return Object.freeze({
    nbd: [...nbd],
    rateBytes: rate * 1e6,
    blockSize,
    durationMs,
    seed:
      flags.seed === undefined
        ? randomInt(2 ** 31)
        : wholeNumber('--seed', flags.seed, 0, 2 ** 32 - 1),
    queueDepth: wholeNumber('--queue-depth', flags.queueDepth ?? '4', 1, 64),
    guestAgent: flags.guestAgent,
    vm: flags.vm ?? 'workload',
    verify: Boolean(flags.verify),
  });
}

async function connectAll(
  uris: readonly string[],
  blockSize: number,
  depth: number,
): Promise<NbdClient[]> {
  const clients: NbdClient[] = [];
  try {
    for (const uri of uris) clients.push(await NbdClient.connect(uri));
  } catch (e) {
    await Promise.all(clients.map((c) => c.close()));
    throw e;
  }
  const blocks = clients.reduce((n, c) => n + Math.floor(c.size / blockSize), 0);
  if (blocks < depth) {
    await Promise.all(clients.map((c) => c.close()));
    throw badInput(
      '--block-size',
      `the disks hold only ${blocks} blocks; need at least --queue-depth`,
    );
  }
  return clients;
}

/** Runs a workload to the end (or until `signal`) and returns its summary. */
export async function runWorkload(
  opts: WorkloadOptions,
  signal: AbortSignal = new AbortController().signal,
  progress: (line: string) => void = () => undefined,
): Promise<WorkloadSummary> {
  const clients = await connectAll(opts.nbd, opts.blockSize, opts.queueDepth);
  const workload = new Workload(clients, opts);
  const agent = opts.guestAgent
    ? connectGuestAgent({
        socketPath: opts.guestAgent,
        vm: opts.vm,
        hooks: workload,
        note: progress,
      })
    : undefined;
  const ticker = setInterval(() => {
    const s = workload.elapsedMs() / 1000;
    progress(
      `${s.toFixed(0)}s ${workload.state}: ${formatSize(workload.stats.bytesWritten)} in ${workload.stats.ops} writes, ${(workload.stats.bytesWritten / 1e6 / Math.max(s, 0.001)).toFixed(1)} MB/s`,
    );
  }, 1000);
  try {
    await workload.run(signal);
    const seconds = workload.elapsedMs() / 1000;
    const summary: WorkloadSummary = {
      nbd: [...opts.nbd],
      seed: opts.seed,
      blockSize: opts.blockSize,
      queueDepth: opts.queueDepth,
      seconds: Number(seconds.toFixed(3)),
      bytesWritten: workload.stats.bytesWritten,
      ops: workload.stats.ops,
      mbPerSecond: Number((workload.stats.bytesWritten / 1e6 / seconds).toFixed(2)),
      freezes: workload.stats.freezes,
      selfThaws: workload.stats.selfThaws,
    };
    if (opts.verify) summary.verified = await workload.verify();
    return summary;
  } finally {
    clearInterval(ticker);
    agent?.close();
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  }
}

/** `--check`: reads every block of the disks; bad blocks are a failed action. */
export async function checkCommand(flags: WorkloadFlags): Promise<CheckReport> {
  if (flags.seed === undefined)
    throw badInput('--seed', "is required with --check (the writer's seed)");
  const opts = compileWorkloadOptions(flags);
  const clients = await connectAll(opts.nbd, opts.blockSize, 1);
  try {
    const report = await checkDisks(clients, opts.seed, opts.blockSize);
    if (report.bad > 0) {
      throw new SecondsiteError('SS_VERIFY_FAILED', `check failed: ${report.badBlocks[0]}`, {
        report,
      });
    }
    return report;
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  }
}

/** The CLI's entry: flags in, summary printed; a failed verification is a failed action. */
export async function workloadCommand(flags: WorkloadFlags): Promise<WorkloadSummary> {
  const opts = compileWorkloadOptions(flags);
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    process.stderr.write(`workload: seed ${opts.seed}, ${opts.nbd.length} disk(s)\n`);
    const summary = await runWorkload(opts, stop.signal, (line) =>
      process.stderr.write(`workload: ${line}\n`),
    );
    if (summary.verified && summary.verified.mismatches.length > 0) {
      throw new SecondsiteError(
        'SS_VERIFY_FAILED',
        `verification failed: ${summary.verified.mismatches[0]}`,
        { summary },
      );
    }
    return summary;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
