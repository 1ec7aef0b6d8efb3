/**
 * Capacity planning (R22), pure: from each VM's disks, its measured write churn (the source
 * host's report: average per hour and the peak of any 1, 5, 15 and 60 consecutive buckets over
 * the last 1440 buckets; a bucket is a minute, so 24 hours, unless the host reports another
 * length — only a development host does, `--dev-churn-bucket`) and its policy, what
 * replicating it needs:
 *
 *   - bandwidth to keep the copy frequency: the peak churn of one interval, sent within the
 *     interval. The peak is taken over the smallest measured window that is at least the
 *     interval (minute buckets: 30 s → 1 minute, 5 m → 5 minutes, 15 m → 15 minutes): bursts
 *     shorter than that window are averaged over it. Its rate is the window's peak bytes /
 *     (its buckets × the bucket length). × the compression ratio when the policy compresses: the
 *     ratio replication measured for the VM (bytes on the wire / raw bytes of the cycles its
 *     replica host received) once at least MIN_MEASURED_RAW_BYTES were carried, else the
 *     assumed one (0.5 unless given). Churn counts every guest write; cycles ship only the
 *     last version of a block rewritten within one interval, so for such workloads the need
 *     is an upper bound;
 *   - the initial copy time: the disks' virtual size (sparse disks send less: an upper bound)
 *     × the compression ratio, at the link's bandwidth;
 *   - replica storage for the retention window: the replica disks plus the undo data, which is
 *     the average churn per hour × the retention hours (rewrites of the same blocks counted each
 *     time), capped per disk by the disk's size;
 *   - which VMs the link cannot carry: VMs are admitted high priority first, then normal, then
 *     low, smaller needs first within a priority; a VM whose need does not fit in what is left
 *     is not carried (nor is one whose need alone exceeds the link).
 * Rates are bytes per second; the CLI prints MB/s (10^6 bytes).
 */
import type { CapacityPlanView, CapacityVmPlanView } from '../../common/api-client/types.ts';
import type { CopyFrequency } from './policy.ts';
import { COPY_FREQUENCY_MS } from './policy.ts';

export type Priority = 'high' | 'normal' | 'low';

/** The compression ratio assumed when a policy compresses (compressed / raw). */
export const DEFAULT_COMPRESSION_RATIO = 0.5;
/**
 * A VM's measured compression is used once its replica received this many raw bytes of
 * cycles: a few chunks (1 MiB each) say little about the data's compressibility.
 */
export const MIN_MEASURED_RAW_BYTES = 16 * 1024 * 1024;
/** The link bandwidth assumed when none is given: 100 MB/s. */
export const DEFAULT_LINK_BYTES_PER_SECOND = 100_000_000;

/** The churn bucket of every production host (and of hosts that report none): a minute. */
export const DEFAULT_CHURN_BUCKET_MS = 60_000;

/** One disk's churn; the peaks are of 1, 5, 15 and 60 consecutive buckets (minutes by default). */
export interface DiskChurnInput {
  readonly index: number;
  /** Per real hour (the host divides by the time its buckets cover). */
  readonly avgBytesPerHour: number;
  readonly peakMinuteBytes: number;
  readonly peakFiveMinutesBytes: number;
  readonly peakQuarterHourBytes: number;
  readonly peakHourBytes: number;
}

export interface CapacityVmInput {
  readonly vm: string;
  readonly server: string;
  readonly cloud: string | null;
  readonly host: string;
  /** A replicated item exists (else a candidate). */
  readonly protected: boolean;
  readonly policy: {
    readonly name: string;
    readonly copyFrequency: CopyFrequency;
    readonly retentionHours: number;
    readonly compression: boolean;
  } | null;
  readonly priority: Priority;
  readonly disks: readonly { readonly index: number; readonly sizeBytes: number }[];
  /**
   * What replication carried for it: block bytes of the cycles its replica host received since
   * that agent started, raw and on the wire. Absent for a candidate or an older host.
   */
  readonly sent?: { readonly rawBytes: number; readonly wireBytes: number } | null;
  /** Null: the host never reported churn for it. */
  readonly churn: {
    /** Completed buckets the figures cover. */
    readonly windowMinutes: number;
    /** The host's bucket length (ms); absent or 0 (older hosts): DEFAULT_CHURN_BUCKET_MS. */
    readonly bucketMs?: number;
    readonly disks: readonly DiskChurnInput[];
  } | null;
}

/** One VM of the plan: the API's shape (common/api-client/types.ts), not a copy of it. */
export type CapacityVmPlan = CapacityVmPlanView;

export type CapacityPlan = CapacityPlanView;

const WINDOWS: ReadonlyArray<{ buckets: number; of: (d: DiskChurnInput) => number }> = [
  { buckets: 1, of: (d) => d.peakMinuteBytes },
  { buckets: 5, of: (d) => d.peakFiveMinutesBytes },
  { buckets: 15, of: (d) => d.peakQuarterHourBytes },
  { buckets: 60, of: (d) => d.peakHourBytes },
];

/** The bucket length a report stands for: 0 or absent (older hosts) is a minute. */
export function bucketOf(bucketMs: number | undefined): number {
  return bucketMs !== undefined && bucketMs > 0 ? bucketMs : DEFAULT_CHURN_BUCKET_MS;
}

/**
 * The peak churn rate (raw bytes/s) over the smallest window ≥ the interval: the window's peak
 * bytes / (its buckets × the bucket length).
 */
export function peakRate(
  disks: readonly DiskChurnInput[],
  intervalMs: number,
  bucketMs?: number,
): number {
  const bucket = bucketOf(bucketMs);
  const w = WINDOWS.find((x) => x.buckets * bucket >= intervalMs) ?? WINDOWS[WINDOWS.length - 1]!;
  // Disks peak at different times at worst together: their peaks add up.
  const bytes = disks.reduce((n, d) => n + w.of(d), 0);
  return bytes / ((w.buckets * bucket) / 1000);
}

const RANK: Record<Priority, number> = { high: 0, normal: 1, low: 2 };

export function planCapacity(
  inputs: readonly CapacityVmInput[],
  opts: { linkBytesPerSecond?: number; compressionRatio?: number } = {},
): CapacityPlan {
  const link = opts.linkBytesPerSecond ?? DEFAULT_LINK_BYTES_PER_SECOND;
  const ratio = opts.compressionRatio ?? DEFAULT_COMPRESSION_RATIO;
  const planned = inputs.map((v) => planVm(v, link, ratio));
  // Admission: priority, then the smaller need, then the name.
  const order = [...planned].sort(
    (a, b) =>
      RANK[a.priority] - RANK[b.priority] ||
      a.requiredBytesPerSecond - b.requiredBytesPerSecond ||
      a.vm.localeCompare(b.vm),
  );
  let left = link;
  const verdict = new Map<string, { carried: boolean; note: string | null }>();
  for (const p of order) {
    const key = `${p.server}/${p.vm}`;
    if (p.requiredBytesPerSecond > link) {
      verdict.set(key, {
        carried: false,
        note: `its peak churn alone needs ${mbps(p.requiredBytesPerSecond)} MB/s`,
      });
    } else if (p.requiredBytesPerSecond > left) {
      verdict.set(key, {
        carried: false,
        note: `needs ${mbps(p.requiredBytesPerSecond)} MB/s; ${mbps(left)} MB/s is left after higher-priority or smaller VMs`,
      });
    } else {
      left -= p.requiredBytesPerSecond;
      verdict.set(key, { carried: true, note: p.note });
    }
  }
  const vms = planned.map((p) => ({ ...p, ...verdict.get(`${p.server}/${p.vm}`) }));
  const sum = (f: (p: CapacityVmPlan) => number): number => vms.reduce((n, p) => n + f(p), 0);
  const diskBytes = sum((p) => p.diskBytes);
  return {
    linkBytesPerSecond: link,
    compressionRatio: ratio,
    vms,
    total: {
      vms: vms.length,
      diskBytes,
      requiredBytesPerSecond: sum((p) => p.requiredBytesPerSecond),
      averageBytesPerSecond: sum((p) => p.averageBytesPerSecond),
      initialCopySeconds: sum((p) => p.initialCopySeconds),
      undoBytes: sum((p) => p.undoBytes),
      replicaStorageBytes: sum((p) => p.replicaStorageBytes),
      notCarried: vms.filter((p) => !p.carried).map((p) => p.vm),
    },
    assumptions: [
      `compression: a compressing policy sends the share of the raw bytes replication ` +
        `measured for the VM, or ${ratio} before it carried ${MIN_MEASURED_RAW_BYTES / 1048576} MiB`,
      'bandwidth to keep the copy frequency: the peak churn over the smallest measured window ' +
        '(1, 5, 15 or 60 minutes) at least as long as the interval; disks peak together',
      ...(inputs.some((v) => v.churn && bucketOf(v.churn.bucketMs) !== DEFAULT_CHURN_BUCKET_MS)
        ? [
            'churn windows: a development host counts churn in buckets other than a minute; ' +
              'its windows are 1, 5, 15 and 60 of its buckets',
          ]
        : []),
      'initial copy: the disks\u2019 virtual size (sparse disks send less)',
      'undo data: average churn per hour × retention hours, capped by each disk\u2019s size',
      'churn: guest data writes over the last 24 hours as the source host measured them; ' +
        'a block rewritten within one interval is sent once, so rewrites make the need an upper bound',
    ],
  };
}

function planVm(v: CapacityVmInput, link: number, ratio: number): CapacityVmPlan {
  const diskBytes = v.disks.reduce((n, d) => n + d.sizeBytes, 0);
  const measured = measuredRatio(v.sent);
  const factor = v.policy?.compression ? (measured ?? ratio) : 1;
  const churn = v.churn?.disks ?? [];
  const intervalMs = v.policy ? COPY_FREQUENCY_MS[v.policy.copyFrequency] : 0;
  const bucket = bucketOf(v.churn?.bucketMs);
  const avgPerHour = churn.reduce((n, d) => n + d.avgBytesPerHour, 0);
  // The peak of 60 buckets, per real hour (the same bytes with minute buckets).
  const peakPerHour = Math.round(
    (churn.reduce((n, d) => n + d.peakHourBytes, 0) * 3_600_000) / (60 * bucket),
  );
  const rawPeakRate = v.policy ? peakRate(churn, intervalMs, bucket) : 0;
  const undoBytes = v.policy
    ? v.disks.reduce((n, disk) => {
        const c = churn.find((d) => d.index === disk.index);
        return n + Math.min(disk.sizeBytes, (c?.avgBytesPerHour ?? 0) * v.policy!.retentionHours);
      }, 0)
    : 0;
  const note =
    v.policy === null
      ? 'no policy: its cloud is associated with none (name one with --policy)'
      : v.churn === null || v.churn.windowMinutes === 0
        ? 'no churn measured yet: the needs shown are the disks only'
        : null;
  return {
    vm: v.vm,
    server: v.server,
    cloud: v.cloud,
    host: v.host,
    protected: v.protected,
    policy: v.policy?.name ?? null,
    copyFrequency: v.policy?.copyFrequency ?? null,
    priority: v.priority,
    diskBytes,
    // Whole minutes from a production host; to 3 decimals under a development bucket length.
    measuredMinutes: Math.round(((v.churn?.windowMinutes ?? 0) * bucket) / 60) / 1000,
    churnAvgBytesPerHour: avgPerHour,
    churnPeakBytesPerHour: peakPerHour,
    peakBytesPerInterval: Math.round((rawPeakRate * intervalMs) / 1000),
    compressionRatio: factor,
    compressionMeasured: v.policy?.compression === true && measured !== null,
    requiredBytesPerSecond: Math.round(rawPeakRate * factor),
    averageBytesPerSecond: Math.round((avgPerHour / 3600) * factor),
    initialCopySeconds: Math.round((diskBytes * factor) / link),
    undoBytes,
    replicaStorageBytes: diskBytes + undoBytes,
    carried: true,
    note,
  };
}

/** Wire bytes per raw byte of what replication carried; null when too little to tell. */
function measuredRatio(sent: CapacityVmInput['sent']): number | null {
  if (!sent || sent.rawBytes < MIN_MEASURED_RAW_BYTES) return null;
  // A chunk that does not shrink travels raw: never above 1 (rounded for the JSON).
  return Math.round(Math.min(1, sent.wireBytes / sent.rawBytes) * 1000) / 1000;
}

/** Bytes/s as MB/s with up to two decimals. */
export function mbps(bytesPerSecond: number): number {
  return Math.round(bytesPerSecond / 10_000) / 100;
}
