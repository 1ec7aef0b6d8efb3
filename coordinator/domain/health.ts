/**
 * A replicated item's health (R21), after Hyper-V Replica's rules. Pure function of the item's
 * facts and `now` (ms since the epoch); no clock is read here.
 *
 * critical
 *   resync-required       the state says so (journal overflow, corrupt journal, …)
 *   replication-stopped   the sender reported a failure it will not retry, or cycles have
 *                         failed for STOPPED_AFTER_CYCLES copy intervals in a row
 * warning
 *   missed-cycles         in the monitoring window more than 20% of the expected cycles did
 *                         not succeed (Hyper-V's threshold). Expected = whole copy intervals
 *                         since the window (or protection) began, minus one: the cycle now due
 *                         may still be in flight and must not count as missed.
 *   stale-point           the newest recovery point is older than
 *                         STALE_AFTER_CYCLES × copy interval + STALE_SLACK_MS
 *                         (30s → 2 min, 5m → 11 min, 15m → 31 min): two whole cycles missed,
 *                         plus a minute for a slow cycle on a busy link.
 *   paused                replication is paused by request
 *   test-failover-left    a test failover has run longer than TEST_FORGOTTEN_MS
 * Only `protected` items are judged on cycles and point age: other states do not cycle, and
 * their own reason (paused, resync) says more. Each reason carries what to do.
 */
import { cyclesExpected, type ItemState } from './item-state.ts';
import { COPY_FREQUENCY_MS, type CopyFrequency } from './policy.ts';

export const MISSED_CYCLES_WARNING_RATIO = 0.2;
export const STALE_AFTER_CYCLES = 2;
export const STALE_SLACK_MS = 60_000;
export const STOPPED_AFTER_CYCLES = 6;
/** @default 1 hour; Hyper-V's own window is longer, but an hour lets health recover visibly. */
export const DEFAULT_MONITORING_WINDOW_MS = 3_600_000;
export const TEST_FORGOTTEN_MS = 24 * 3_600_000;

export type Health = 'normal' | 'warning' | 'critical';
export type HealthReasonCode =
  | 'resync-required'
  | 'replication-stopped'
  | 'missed-cycles'
  | 'stale-point'
  | 'paused'
  | 'test-failover-left';

export interface HealthReason {
  readonly code: HealthReasonCode;
  readonly severity: 'warning' | 'critical';
  readonly message: string;
  /** What the administrator should do about it. */
  readonly action: string;
}

export interface HealthInput {
  readonly vm: string;
  readonly state: ItemState;
  readonly copyFrequency: CopyFrequency;
  readonly now: number;
  /** When the item last became `protected` (cycles are expected from then on). */
  readonly protectedSince: number | null;
  /** Finish times of successful delta cycles; older ones than the window are ignored. */
  readonly successfulCycles: readonly number[];
  readonly latestPointAt: number | null;
  /** The current run of failures since the last successful cycle, if any. */
  readonly failure: {
    readonly since: number;
    readonly message: string;
    /** false for failures that will not heal by retrying (incompatible protocol, not paired). */
    readonly retrying: boolean;
  } | null;
  readonly testFailoverSince?: number | null;
  /** @default DEFAULT_MONITORING_WINDOW_MS */
  readonly windowMs?: number;
  /**
   * Multiplies every duration derived from the copy frequency (interval, staleness slack).
   * 1 in production; tests run the whole product with short cycles (SECONDSITE_TIME_SCALE).
   * @default 1
   */
  readonly timeScale?: number;
}

export interface HealthReport {
  readonly health: Health;
  readonly reasons: readonly HealthReason[];
}

const minutes = (ms: number): string => `${Math.round(ms / 60_000)} min`;

export function staleThresholdMs(f: CopyFrequency, timeScale = 1): number {
  return (STALE_AFTER_CYCLES * COPY_FREQUENCY_MS[f] + STALE_SLACK_MS) * timeScale;
}

const intervalOf = (a: HealthInput): number =>
  COPY_FREQUENCY_MS[a.copyFrequency] * (a.timeScale ?? 1);

/** Cycles expected and missed in the window ending at `now`. */
export function missedCycles(a: HealthInput): { expected: number; missed: number } {
  const interval = intervalOf(a);
  if (a.protectedSince === null) return { expected: 0, missed: 0 };
  const start = Math.max(a.protectedSince, a.now - (a.windowMs ?? DEFAULT_MONITORING_WINDOW_MS));
  const expected = Math.max(0, Math.floor((a.now - start) / interval) - 1);
  const done = a.successfulCycles.filter((t) => t > start && t <= a.now).length;
  return { expected, missed: Math.max(0, expected - done) };
}

function critical(a: HealthInput): HealthReason[] {
  const out: HealthReason[] = [];
  if (a.state === 'resync-required') {
    out.push({
      code: 'resync-required',
      severity: 'critical',
      message: `${a.vm} needs a resync: its changes can no longer be sent one by one`,
      action: `run: secondsite replication resync --vault VAULT ${a.vm} (only differing blocks travel)`,
    });
  }
  const f = a.failure;
  const stopAfter = STOPPED_AFTER_CYCLES * intervalOf(a);
  if (f !== null && (!f.retrying || a.now - f.since >= stopAfter)) {
    out.push({
      code: 'replication-stopped',
      severity: 'critical',
      message: f.retrying
        ? `replication of ${a.vm} has failed for ${minutes(a.now - f.since)}: ${f.message}`
        : `replication of ${a.vm} stopped: ${f.message}`,
      action: f.retrying
        ? 'check that both hosts run and reach each other on the policy port; ' +
          'replication resumes by itself once they do'
        : `fix the cause named above, then run: secondsite replication resume --vault VAULT ${a.vm}`,
    });
  }
  return out;
}

function cycleWarnings(a: HealthInput): HealthReason[] {
  if (!cyclesExpected(a.state)) return [];
  const out: HealthReason[] = [];
  const { expected, missed } = missedCycles(a);
  if (expected > 0 && missed / expected > MISSED_CYCLES_WARNING_RATIO) {
    out.push({
      code: 'missed-cycles',
      severity: 'warning',
      message: `${missed} of ${expected} replication cycles of ${a.vm} were missed in the monitoring window`,
      action:
        'check the hosts, the link between the sites and its bandwidth cap; ' +
        'health returns to normal as cycles succeed again',
    });
  }
  const since = a.latestPointAt ?? a.protectedSince;
  const limit = staleThresholdMs(a.copyFrequency, a.timeScale ?? 1);
  if (since !== null && a.now - since > limit) {
    out.push({
      code: 'stale-point',
      severity: 'warning',
      message: `the newest recovery point of ${a.vm} is ${minutes(a.now - since)} old (limit ${minutes(limit)})`,
      action: 'check that the source and target hosts are running and connected',
    });
  }
  return out;
}

function otherWarnings(a: HealthInput): HealthReason[] {
  const out: HealthReason[] = [];
  if (a.state === 'paused') {
    out.push({
      code: 'paused',
      severity: 'warning',
      message: `replication of ${a.vm} is paused; changes are journaled, not sent`,
      action: `run: secondsite replication resume --vault VAULT ${a.vm}`,
    });
  }
  const t = a.testFailoverSince ?? null;
  if (t !== null && a.now - t > TEST_FORGOTTEN_MS) {
    out.push({
      code: 'test-failover-left',
      severity: 'warning',
      message: `a test failover of ${a.vm} has been running for ${Math.floor((a.now - t) / 3_600_000)} h`,
      action: `run: secondsite failover cleanup-test --vault VAULT --vm ${a.vm}`,
    });
  }
  return out;
}

export function itemHealth(a: HealthInput): HealthReport {
  const reasons = [...critical(a), ...cycleWarnings(a), ...otherWarnings(a)];
  const health: Health = reasons.some((r) => r.severity === 'critical')
    ? 'critical'
    : reasons.length > 0
      ? 'warning'
      : 'normal';
  return Object.freeze({ health, reasons: Object.freeze(reasons.map((r) => Object.freeze(r))) });
}

/** RPO as `item show` reports it: seconds since the newest recovery point, null when none. */
export function rpoSeconds(latestPointAt: number | null, now: number): number | null {
  return latestPointAt === null ? null : Math.max(0, Math.floor((now - latestPointAt) / 1000));
}
