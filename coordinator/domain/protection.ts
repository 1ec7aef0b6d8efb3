/**
 * A replicated item (R14, R20, R21): one protected VM, its two sides, and what the hosts last
 * reported about it. Pure: the service feeds it host reports and `now`; nothing here reads a
 * clock, the store or the network.
 *
 * What the coordinator learns, and from whom (R32: metadata only):
 *   - the source host: pairing state, last error, initial-copy progress, unshipped bytes;
 *   - the target host: the newest applied recovery point and how many are retained.
 * A successful cycle is a new newest point at the target; a failure is the source's sender
 * reporting an error (or either host being unreachable) until the next success.
 */
import { SecondsiteError } from '../../common/errors/errors.ts';
import {
  DEFAULT_MONITORING_WINDOW_MS,
  itemHealth,
  rpoSeconds,
  type Health,
  type HealthReason,
} from './health.ts';
import { transition, type ItemEvent, type ItemState } from './item-state.ts';
import type { Placement } from './placement.ts';
import { COPY_FREQUENCY_MS, type CopyFrequency, type Policy } from './policy.ts';

export type PointType = 'crash-consistent' | 'app-consistent';

export interface PointSummary {
  readonly id: string;
  /** ms since the epoch. */
  readonly time: number;
  readonly type: PointType;
}

export interface ItemFailure {
  readonly since: number;
  readonly message: string;
  readonly retrying: boolean;
}

export interface ItemRecord {
  readonly vaultId: string;
  /** The VM's name: the item's key in the vault (both sides keep the replica under it). */
  readonly vm: string;
  readonly policy: string;
  readonly state: ItemState;
  readonly sourceServer: string;
  readonly sourceCloud: string;
  readonly sourceHost: string;
  readonly targetServer: string;
  readonly targetCloud: string;
  /** Null until placement chose one. */
  readonly targetHost: string | null;
  readonly placement: Placement | null;
  /** Replication epoch (generation id) the hosts were paired under. */
  readonly epoch: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly protectedSince: number | null;
  /** Observation times of successful cycles inside the monitoring window, oldest first. */
  readonly cycles: readonly number[];
  readonly latestPoint: PointSummary | null;
  readonly failure: ItemFailure | null;
  /** Initial copy progress as the source last reported it. */
  readonly copy: { readonly done: number; readonly total: number } | null;
  /** Errors of the jobs acting on the item (enable, disable…), newest last, at most 5. */
  readonly jobErrors: readonly string[];
}

/** What one host reported about the item's VM (from a HostInventoryReport). */
export interface VmStatus {
  /** The host's control stream (and its provider's channel) are open. */
  readonly reachable: boolean;
  readonly role: 'primary' | 'replica' | null;
  /** Sender state: idle | connecting | initial-copy | shipping | backoff | stopped | incompatible. */
  readonly senderState: string;
  readonly lastError: string;
  readonly baseline: string;
  readonly epoch: number | null;
  readonly copyDone: number;
  readonly copyTotal: number;
  readonly latestPoint: PointSummary | null;
  readonly pointCount: number;
  readonly unshippedBytes: number;
  readonly paused: boolean;
}

export function newItem(a: {
  vaultId: string;
  vm: string;
  policy: string;
  sourceServer: string;
  sourceCloud: string;
  sourceHost: string;
  targetServer: string;
  targetCloud: string;
  epoch: number;
  now: number;
}): ItemRecord {
  return {
    ...a,
    state: 'enabling',
    targetHost: null,
    placement: null,
    createdAt: a.now,
    updatedAt: a.now,
    protectedSince: null,
    cycles: [],
    latestPoint: null,
    failure: null,
    copy: null,
    jobErrors: [],
  };
}

/** Applies a state event (SS_CONFLICT when the state does not allow it). */
export function applyEvent(item: ItemRecord, event: ItemEvent, now: number): ItemRecord {
  const state = transition(item.state, event, item.vm);
  return {
    ...item,
    state,
    updatedAt: now,
    protectedSince: state === 'protected' && item.state !== 'protected' ? now : item.protectedSince,
    ...(state === 'protected' && item.state !== 'protected' ? { cycles: [], failure: null } : {}),
  };
}

export function withJobError(item: ItemRecord, message: string, now: number): ItemRecord {
  return { ...item, jobErrors: [...item.jobErrors, message].slice(-5), updatedAt: now };
}

/** Failures a retry will not heal: the sender stopped trying. */
const NOT_RETRYING = new Set(['stopped', 'incompatible']);

/**
 * Folds the hosts' latest reports into the item. A changed newest point at the target is a
 * successful cycle; source errors (or an unreachable host) open a failure run that the next
 * success closes. Cycle times older than the monitoring window are dropped.
 */
export function observe(
  item: ItemRecord,
  source: VmStatus | undefined,
  target: VmStatus | undefined,
  now: number,
  windowMs = DEFAULT_MONITORING_WINDOW_MS,
): ItemRecord {
  let cycles = item.cycles.filter((t) => now - t <= windowMs);
  let latestPoint = item.latestPoint;
  const tp = target?.latestPoint ?? null;
  const newPoint =
    tp !== null &&
    (latestPoint === null || (tp.id !== latestPoint.id && tp.time >= latestPoint.time));
  if (newPoint) {
    latestPoint = tp;
    if (item.state === 'protected') cycles = [...cycles, now];
  }
  const problem = failureOf(item, source, target);
  const failure =
    problem === null
      ? newPoint || source?.lastError === ''
        ? null
        : item.failure
      : {
          since: item.failure?.since ?? now,
          message: problem.message,
          retrying: problem.retrying,
        };
  const copy =
    source !== undefined && source.copyTotal > 0
      ? { done: source.copyDone, total: source.copyTotal }
      : item.copy;
  return { ...item, cycles, latestPoint, failure, copy };
}

function failureOf(
  item: ItemRecord,
  source: VmStatus | undefined,
  target: VmStatus | undefined,
): { message: string; retrying: boolean } | null {
  if (item.state === 'paused' || item.state === 'disabled') return null;
  if (source !== undefined && !source.reachable) {
    return {
      message: `source host ${item.sourceHost} is not reachable through ${item.sourceServer}`,
      retrying: true,
    };
  }
  if (target !== undefined && !target.reachable && item.targetHost !== null) {
    if (source?.lastError) return { message: source.lastError, retrying: true };
    return {
      message: `target host ${item.targetHost} is not reachable through ${item.targetServer}`,
      retrying: true,
    };
  }
  if (source !== undefined && source.lastError !== '') {
    return { message: source.lastError, retrying: !NOT_RETRYING.has(source.senderState) };
  }
  return null;
}

/** True once the source reports the replica equal to it (initial copy finished or not needed). */
export function initialCopyDone(source: VmStatus | undefined): boolean {
  if (source === undefined || source.role !== 'primary') return false;
  return (
    (source.baseline === 'zero' || source.baseline === 'copied') &&
    source.senderState !== 'initial-copy'
  );
}

export interface ItemView {
  readonly vm: string;
  readonly state: ItemState;
  readonly health: Health;
  readonly policy: string;
  readonly sourceServer: string;
  readonly targetServer: string;
  readonly sourceHost: string;
  readonly targetHost: string | null;
  readonly sourceCloud: string;
  readonly targetCloud: string;
  readonly lastCycleAt: string | null;
  readonly latestRecoveryPoint: { id: string; time: string; type: PointType } | null;
  readonly rpoSeconds: number | null;
  readonly errors: readonly { code: string; message: string; action: string }[];
  readonly initialReplication: { bytesDone: number; bytesTotal: number } | null;
  readonly epoch: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The item as `item list/show` prints it (CLI.md), with health judged at `now`. */
export function itemView(
  item: ItemRecord,
  copyFrequency: CopyFrequency,
  now: number,
  opts: { windowMs?: number; timeScale?: number } = {},
): ItemView {
  const report = itemHealth({
    windowMs: opts.windowMs ?? DEFAULT_MONITORING_WINDOW_MS,
    timeScale: opts.timeScale ?? 1,
    vm: item.vm,
    state: item.state,
    copyFrequency,
    now,
    protectedSince: item.protectedSince,
    successfulCycles: item.cycles,
    latestPointAt: item.latestPoint?.time ?? null,
    failure: item.failure,
  });
  const errors = [
    ...report.reasons.map((r: HealthReason) => ({
      code: r.code,
      message: r.message,
      action: r.action,
    })),
    ...(item.failure !== null && !report.reasons.some((r) => r.code === 'replication-stopped')
      ? [
          {
            code: 'replication-error',
            message: item.failure.message,
            action: 'replication retries by itself; check that both hosts run and reach each other',
          },
        ]
      : []),
    ...item.jobErrors.map((m) => ({
      code: 'job-failed',
      message: m,
      action: `see: secondsite job list --vault VAULT`,
    })),
  ];
  const last = item.cycles.at(-1) ?? null;
  return {
    vm: item.vm,
    state: item.state,
    health: report.health,
    policy: item.policy,
    sourceServer: item.sourceServer,
    targetServer: item.targetServer,
    sourceHost: item.sourceHost,
    targetHost: item.targetHost,
    sourceCloud: item.sourceCloud,
    targetCloud: item.targetCloud,
    lastCycleAt: last === null ? null : iso(last),
    latestRecoveryPoint:
      item.latestPoint === null
        ? null
        : {
            id: item.latestPoint.id,
            time: iso(item.latestPoint.time),
            type: item.latestPoint.type,
          },
    rpoSeconds: rpoSeconds(item.latestPoint?.time ?? null, now),
    errors,
    initialReplication:
      item.copy === null ? null : { bytesDone: item.copy.done, bytesTotal: item.copy.total },
    epoch: item.epoch,
  };
}

/** What a host is told when it is paired (host_control.proto PairHostVmCommand, sans names). */
export interface PairSettings {
  readonly compression: boolean;
  readonly copyFrequencySeconds: number;
  readonly appConsistentHours: number;
  readonly retentionHours: number;
}

export function pairSettings(policy: Policy, intervalScale = 1): PairSettings {
  return {
    compression: policy.compression,
    copyFrequencySeconds: Math.max(
      1,
      Math.round((COPY_FREQUENCY_MS[policy.copyFrequency] / 1000) * intervalScale),
    ),
    appConsistentHours: policy.appConsistentHours,
    retentionHours: policy.retentionHours,
  };
}

/** Refuses enabling a VM that another item already holds (names are the items' keys). */
export function checkNotProtected(existing: ItemRecord | undefined, vm: string): void {
  if (existing !== undefined && existing.state !== 'disabled') {
    throw new SecondsiteError(
      'SS_CONFLICT',
      `${vm} is already a replicated item (${existing.state}, policy "${existing.policy}")`,
      { vm, state: existing.state },
    );
  }
}
