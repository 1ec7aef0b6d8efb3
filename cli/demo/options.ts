/**
 * `secondsite demo` flags, validated before anything starts (a refusal is exit 2 with the
 * flag named) and compiled once into a frozen shape. Pure: no I/O.
 */
import { badInput } from '../../common/errors/errors.ts';

/** Flags as commander hands them over. */
export interface DemoFlags {
  readonly singleHost?: boolean;
  readonly duration?: string;
  readonly keep?: boolean;
  readonly rate?: string;
  readonly timeScale?: string;
  /** commander's --no-failover gives failover: false. */
  readonly failover?: boolean;
}

export interface DemoOptions {
  /** The storage path on one host agent, without coordinator or providers. */
  readonly singleHost: boolean;
  /** End by itself after this long (the two-site demo counts from replication enable). */
  readonly durationMs: number | undefined;
  /** The same, as typed (passed on to the workload). */
  readonly duration: string | undefined;
  readonly keep: boolean;
  /** Workload write rate per VM, MB/s (10^6 bytes). @default 2 */
  readonly rate: string;
  /**
   * SECONDSITE_TIME_SCALE of the coordinator: 0.2 runs the policy's 30 s copy frequency as
   * 6 s cycles, 1 is real time. @default 0.2
   */
  readonly timeScale: number;
  /** After --duration: test failover, planned failover and failback of VM1. @default true */
  readonly failover: boolean;
}

export const DEFAULT_RATE = '2';
export const DEFAULT_TIME_SCALE = 0.2;

const UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** "45s" → 45000; a bare number is seconds. */
export function parseDemoDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  const ms = m === null ? NaN : Number(m[1]) * (UNITS[m[2] ?? 's'] ?? NaN);
  if (!Number.isFinite(ms)) {
    throw badInput('--duration', `"${text}" is not a duration (examples: 45s, 5m, 1h)`);
  }
  if (ms <= 0) throw badInput('--duration', 'must be more than 0');
  return Math.round(ms);
}

export function compileDemoOptions(flags: DemoFlags): DemoOptions {
  const durationMs = flags.duration === undefined ? undefined : parseDemoDuration(flags.duration);
  const rate = flags.rate ?? DEFAULT_RATE;
  const rateNumber = Number(rate);
  if (rate.trim() === '' || !Number.isFinite(rateNumber) || rateNumber <= 0 || rateNumber > 1000) {
    throw badInput('--rate', `"${rate}" is not a rate in MB/s (more than 0, at most 1000)`);
  }
  if (flags.singleHost && flags.timeScale !== undefined) {
    throw badInput('--time-scale', 'applies to the two-site demo only, not with --single-host');
  }
  const timeScale = flags.timeScale === undefined ? DEFAULT_TIME_SCALE : Number(flags.timeScale);
  if (
    flags.timeScale?.trim() === '' ||
    !Number.isFinite(timeScale) ||
    timeScale < 0.01 ||
    timeScale > 1
  ) {
    throw badInput(
      '--time-scale',
      `"${flags.timeScale}" must be a number from 0.01 to 1 (1 = real time; 0.2 runs 30 s cycles every 6 s)`,
    );
  }
  return Object.freeze({
    singleHost: Boolean(flags.singleHost),
    durationMs,
    duration: flags.duration,
    keep: Boolean(flags.keep),
    rate,
    timeScale,
    failover: flags.failover !== false,
  });
}
