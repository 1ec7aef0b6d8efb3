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
import type { ItemView } from '../../common/api-client/types.ts';
import { SecondsiteError } from '../../common/errors/errors.ts';
import {
  DEFAULT_MONITORING_WINDOW_MS,
  itemHealth,
  rpoSeconds,
  type HealthReason,
} from './health.ts';
import { transition, type ItemEvent, type ItemState } from './item-state.ts';
import type { Placement } from './placement.ts';
import { bucketOf } from './capacity.ts';
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
  /** A test failover running now (R23); absent/null when none. */
  readonly testFailover?: TestFailoverRecord | null;
  /** Finished test failovers, newest last, at most 10, with the notes given at cleanup. */
  readonly testHistory?: readonly (TestFailoverRecord & { cleanedAt: number; notes: string })[];
  /** The failover that made the item failed-over or committed; null before and after reverse. */
  readonly failover?: FailoverRecord | null;
  /**
   * Set by a reverse replication (R10): what failing back needs to choose the original
   * primary's adapters. null/absent for an item never failed over.
   */
  readonly failback?: FailbackRecord | null;
  /**
   * Scheduled initial replication (R15): when the source is resumed (ms), and whether it was
   * (the coordinator acknowledged the resume). Absent/null for the other methods.
   */
  readonly initialStart?: { readonly at: number; readonly started: boolean } | null;
  /** Offline initial replication: the export, and what the administrator must do (or null). */
  readonly offline?: { readonly exportId: string; readonly waiting: string | null } | null;
  /** Onboarding (R19): the replica VM existed at the target when enabled; it is resynced. */
  readonly onboard?: boolean;
  /** R22: replication priority under the source host's bandwidth cap (absent = normal). */
  readonly priority?: 'high' | 'normal' | 'low';
  /** R22: ms the source waited for its bandwidth cap over the last minute it reported. */
  readonly bandwidthWaitMs?: number;
}

/** The scheduled start is due and not yet done (pure; the watcher acts on it). */
export function scheduledStartDue(item: ItemRecord, now: number): boolean {
  const s = item.initialStart;
  return item.state === 'initial-replication' && s != null && !s.started && now >= s.at;
}

/**
 * Onboarding (R19): the target host already has a VM of this name that is no primary and
 * whose disks have the source's sizes: its disks are compared, not copied over (pure).
 */
export function isExistingReplica(
  existing: { disks: readonly { sizeBytes: number }[]; role: string | null } | undefined,
  sourceDiskSizes: readonly number[],
): boolean {
  if (existing === undefined || existing.role === 'primary') return false;
  return existing.disks.map((d) => d.sizeBytes).join() === sourceDiskSizes.join();
}

export interface FailbackRecord {
  /** The original primary's server and its VM's adapters before the failover. */
  readonly primaryServer: string;
  readonly primaryNics: readonly { network: string; subnet: string }[];
  /** The replica's adapters as placed at failover (on the replica's server). */
  readonly replicaServer: string;
  readonly replicaNicsAtFailover: readonly { network: string; subnet: string }[];
}

export interface TestFailoverRecord {
  readonly since: number;
  readonly point: PointSummary | null;
  readonly testVm: string;
  readonly jobId: string;
}

export interface FailoverRecord {
  readonly type: 'planned' | 'unplanned';
  readonly point: PointSummary | null;
  readonly at: number;
  /** Where the VM ran before: the sides reverse replication swaps. */
  readonly fromHost: string;
}

/** A VM's replication as its host reports it (the coordinator keeps it per host record). */
export interface ReplicationFacts {
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
  /** R22: ms the replication waited for the host's bandwidth cap over the last minute. */
  readonly bandwidthWaitMs?: number;
  /**
   * R22, replica: block bytes of the cycles received since its agent started, raw and as they
   * travelled (absent from older hosts).
   */
  readonly received?: { readonly rawBytes: number; readonly wireBytes: number };
}

/** What one host reported about the item's VM (from a HostInventoryReport). */
export interface VmStatus extends ReplicationFacts {
  /** The host's control stream (and its provider's channel) are open. */
  readonly reachable: boolean;
  /** When the coordinator stored the report this comes from (ms); 0 when unknown. */
  readonly reportedAt?: number;
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
  /** Scheduled initial replication: when the source starts shipping (ms). */
  initialStartsAt?: number;
}): ItemRecord {
  const { initialStartsAt, ...rest } = a;
  return {
    ...rest,
    ...(initialStartsAt === undefined
      ? {}
      : { initialStart: { at: initialStartsAt, started: false } }),
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
  const waited = source?.bandwidthWaitMs ?? 0;
  return {
    ...item,
    cycles,
    latestPoint,
    failure,
    copy,
    ...(waited > 0 || item.bandwidthWaitMs ? { bandwidthWaitMs: waited } : {}),
  };
}

function failureOf(
  item: ItemRecord,
  source: VmStatus | undefined,
  target: VmStatus | undefined,
): { message: string; retrying: boolean } | null {
  if (
    item.state === 'paused' ||
    item.state === 'disabled' ||
    item.state === 'failed-over' ||
    item.state === 'committed'
  ) {
    return null;
  }
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

/**
 * True once the source reports a resync finished: the replica equal again, no resync running,
 * no error, in a report stored after `since` (an older one still shows the replica as it was
 * before the resync was asked for).
 */
export function resyncDone(source: VmStatus | undefined, since: number): boolean {
  return (
    source !== undefined &&
    source.reachable &&
    (source.reportedAt ?? 0) > since &&
    initialCopyDone(source) &&
    !source.senderState.startsWith('resync') &&
    source.lastError === ''
  );
}

/** True once the source reports the replica equal to it (initial copy finished or not needed). */
export function initialCopyDone(source: VmStatus | undefined): boolean {
  if (source === undefined || source.role !== 'primary') return false;
  return (
    (source.baseline === 'zero' || source.baseline === 'copied') &&
    source.senderState !== 'initial-copy'
  );
}

/** `initialReplication` of an item (CLI.md item show). */
type InitialReplicationView = NonNullable<ItemView['initialReplication']>;

/** The item as `item list/show` print it: the API's own shape (CLI.md), not a copy of it. */
export type { ItemView };

/** What the source host measured of the VM's write churn (vm-inventory.ts VmChurnRecord). */
export interface ChurnMeasurement {
  /** Completed buckets measured. */
  readonly windowMinutes: number;
  /** The host's bucket length (ms); absent or 0: a minute (capacity.ts bucketOf). */
  readonly bucketMs?: number;
  readonly disks: readonly {
    index: number;
    avgBytesPerHour: number;
    peakHourBytes: number;
    bytes: number;
  }[];
  readonly hotRegions: readonly { disk: number; offset: number; length: number; bytes: number }[];
}

/** Churn attribution (R22) as `item show` prints it. */
export type ChurnAttribution = NonNullable<ItemView['churn']>;

/** Shares of the VM's churn per disk and per hot region (pure). */
export function churnAttribution(m: ChurnMeasurement): ChurnAttribution {
  const total = m.disks.reduce((n, d) => n + d.bytes, 0);
  const share = (b: number): number => (total === 0 ? 0 : Math.round((b / total) * 1000) / 1000);
  // A development host's buckets are shorter than a minute: its 60-bucket peak is rated per
  // hour and its window told in minutes (the same figures from a production host).
  const bucket = bucketOf(m.bucketMs);
  const perHour = (peak: number): number => Math.round((peak * 3_600_000) / (60 * bucket));
  return {
    windowMinutes: Math.round((m.windowMinutes * bucket) / 60) / 1000,
    avgBytesPerHour: m.disks.reduce((n, d) => n + d.avgBytesPerHour, 0),
    peakBytesPerHour: perHour(m.disks.reduce((n, d) => n + d.peakHourBytes, 0)),
    disks: m.disks.map((d) => ({
      disk: d.index,
      avgBytesPerHour: d.avgBytesPerHour,
      peakBytesPerHour: perHour(d.peakHourBytes),
      share: share(d.bytes),
    })),
    hotRegions: m.hotRegions.map((r) => ({ ...r, share: share(r.bytes) })),
  };
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The item as `item list/show` prints it (CLI.md), with health judged at `now`. */
export function itemView(
  item: ItemRecord,
  copyFrequency: CopyFrequency,
  now: number,
  opts: {
    windowMs?: number;
    timeScale?: number;
    churn?: ChurnMeasurement;
    /** What the target host received for the VM's cycles (its report). */
    received?: ReplicationFacts['received'];
  } = {},
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
    testFailoverSince: item.testFailover?.since ?? null,
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
    ...((item.bandwidthWaitMs ?? 0) > 0 && item.state !== 'paused' && item.state !== 'disabled'
      ? [
          {
            code: 'bandwidth-limited',
            message:
              `the replication bandwidth cap of ${item.sourceHost} delayed this VM's cycles by ` +
              `${Math.round((item.bandwidthWaitMs ?? 0) / 1000)} s in the last minute`,
            action:
              `raise the cap (secondsite host set-bandwidth --vault VAULT --host ` +
              `${item.sourceServer}/${item.sourceHost} …) or the VM's priority ` +
              `(secondsite replication set-priority --vault VAULT --priority high ${item.vm})`,
          },
        ]
      : []),
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
    initialReplication: initialView(item),
    epoch: item.epoch,
    testFailover:
      item.testFailover == null
        ? null
        : {
            testVm: item.testFailover.testVm,
            since: iso(item.testFailover.since),
            recoveryPoint: item.testFailover.point?.id ?? null,
          },
    failover:
      item.failover == null
        ? null
        : {
            type: item.failover.type,
            at: iso(item.failover.at),
            recoveryPoint:
              item.failover.point === null
                ? null
                : {
                    id: item.failover.point.id,
                    time: iso(item.failover.point.time),
                    type: item.failover.point.type,
                  },
          },
    priority: item.priority ?? 'normal',
    churn: opts.churn ? churnAttribution(opts.churn) : null,
    received: opts.received ? { ...opts.received } : null,
  };
}

function initialView(item: ItemRecord): InitialReplicationView | null {
  const extra = {
    ...(item.initialStart ? { startsAt: iso(item.initialStart.at) } : {}),
    ...(item.offline?.waiting ? { waiting: item.offline.waiting } : {}),
    ...(item.onboard ? { existingReplica: true } : {}),
  };
  if (item.copy === null && Object.keys(extra).length === 0) return null;
  return { bytesDone: item.copy?.done ?? 0, bytesTotal: item.copy?.total ?? 0, ...extra };
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

/**
 * Item states whose hosts hold a pairing made under the item's policy: a policy change pairs
 * them again (coordinator/replication/policy-apply-job.ts). Not `enabling` (its job reads the
 * policy at each step) nor the failover states (their next pairing reads it).
 */
export const REPAIRABLE_STATES: readonly ItemState[] = [
  'initial-replication',
  'protected',
  'paused',
  'resync-required',
  'resynchronizing',
];

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
