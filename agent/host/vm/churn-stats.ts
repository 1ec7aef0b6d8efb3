/**
 * Guest write churn per VM and disk (R22 capacity planning; churn attribution), pure: the NBD
 * export's device calls `record` for every guest write (data writes only: zeroes and trims
 * ship no payload), with `now` from the caller.
 *
 * Kept per disk, over the last HISTORY_MINUTES buckets:
 *   - bytes written per bucket (a minute: MINUTE_MS), from which the average per hour and the
 *     peak of any 1, 5, 15 and 60 consecutive buckets follow;
 *   - bytes written per REGION_BYTES region of the disk, per 60 buckets (an hour): the hot
 *     regions are the regions that received the most bytes over the window.
 * A snapshot counts only completed buckets and is computed at most once per bucket per VM,
 * so the inventory that carries it changes at most once a bucket. `toJSON`/`fromJSON` keep
 * the history across a restart (churn-file.ts writes it).
 *
 * The bucket length is a minute in production. A development host may count in shorter
 * buckets (`host start --dev-churn-bucket`, e.g. 2 s, so a test sees whole windows in
 * seconds): every "minute" above is then one bucket (the history is 1440 buckets, the peaks of
 * 1, 5, 15 and 60 buckets) and the snapshot says the length (`bucketMs`) so the coordinator's
 * rates stay right. The average per hour is per real hour whatever the length.
 */

export const MINUTE_MS = 60_000;
/** The shortest and longest bucket a development host may use (`--dev-churn-bucket`). */
export const MIN_BUCKET_MS = 1_000;
export const MAX_BUCKET_MS = MINUTE_MS;
export const HISTORY_MINUTES = 24 * 60;
export const REGION_BYTES = 64 * 1024 * 1024;
/** Hot regions a VM's snapshot names. */
export const TOP_REGIONS = 5;
/** The windows whose peak a snapshot reports, in minutes. */
export const PEAK_WINDOWS = [1, 5, 15, 60] as const;

export interface HotRegion {
  readonly disk: number;
  readonly offset: number;
  readonly length: number;
  /** Bytes written into it over the window. */
  readonly bytes: number;
}

export interface DiskChurn {
  readonly index: number;
  /** Bytes written over the window. */
  readonly bytes: number;
  readonly avgBytesPerHour: number;
  /** The most bytes written in any 1, 5, 15 and 60 consecutive buckets of the window. */
  readonly peakBytes1m: number;
  readonly peakBytes5m: number;
  readonly peakBytes15m: number;
  readonly peakBytes1h: number;
}

export interface VmChurn {
  /** Completed buckets the figures cover (≤ HISTORY_MINUTES): minutes unless `bucketMs`. */
  readonly windowMinutes: number;
  /** The bucket length (ms): MINUTE_MS unless a development host set another. */
  readonly bucketMs: number;
  readonly disks: readonly DiskChurn[];
  /** The top TOP_REGIONS regions over every disk, most bytes first. */
  readonly hotRegions: readonly HotRegion[];
}

interface DiskSeries {
  /** bucket index (ms / bucket length) → bytes */
  readonly minutes: Map<number, number>;
  /** hour index (bucket index / 60) → region index → bytes */
  readonly regions: Map<number, Map<number, number>>;
}

interface VmSeries {
  /** The first bucket index with history. */
  since: number;
  readonly disks: Map<number, DiskSeries>;
  cache?: { minute: number; churn: VmChurn };
}

/** The persisted form (compact pairs). */
export interface ChurnFileBody {
  readonly version: 1;
  /** The bucket length the indices count in; absent (files before it) = MINUTE_MS. */
  readonly bucketMs?: number;
  readonly vms: Record<
    string,
    {
      since: number;
      disks: Record<
        string,
        { m: Array<[number, number]>; r: Array<[number, Array<[number, number]>]> }
      >;
    }
  >;
}

export class ChurnStats {
  private readonly vms = new Map<string, VmSeries>();
  private lastPrune = 0;

  /** @param bucketMs the bucket length: MINUTE_MS except on a development host. */
  constructor(readonly bucketMs: number = MINUTE_MS) {
    if (!Number.isInteger(bucketMs) || bucketMs < MIN_BUCKET_MS || bucketMs > MAX_BUCKET_MS) {
      throw new RangeError(`churn bucket of ${bucketMs} ms is outside 1 s to 60 s`);
    }
  }

  /** Counts `length` bytes written at `offset` of `vm`'s disk `disk` at `now` (ms). */
  record(vm: string, disk: number, offset: number, length: number, now: number): void {
    // Named "minute" throughout: a bucket, a minute in production.
    const minute = Math.floor(now / this.bucketMs);
    let v = this.vms.get(vm);
    if (v === undefined) {
      v = { since: minute, disks: new Map() };
      this.vms.set(vm, v);
    }
    let d = v.disks.get(disk);
    if (d === undefined) {
      d = { minutes: new Map(), regions: new Map() };
      v.disks.set(disk, d);
    }
    d.minutes.set(minute, (d.minutes.get(minute) ?? 0) + length);
    const hour = Math.floor(minute / 60);
    let regions = d.regions.get(hour);
    if (regions === undefined) {
      regions = new Map();
      d.regions.set(hour, regions);
    }
    // A write across a region boundary counts where it starts (writes are small).
    const region = Math.floor(offset / REGION_BYTES);
    regions.set(region, (regions.get(region) ?? 0) + length);
    if (minute !== this.lastPrune) {
      this.lastPrune = minute;
      this.prune(minute);
    }
  }

  /** A function for one disk's device: (offset, length) at the clock's now. */
  recorder(vm: string, disk: number, clock: { now(): number }): (o: number, l: number) => void {
    return (offset, length) => this.record(vm, disk, offset, length, clock.now());
  }

  /** The VM's churn over completed buckets; undefined when it never wrote. */
  snapshot(vm: string, now: number): VmChurn | undefined {
    const v = this.vms.get(vm);
    if (v === undefined) return undefined;
    const minute = Math.floor(now / this.bucketMs);
    if (v.cache?.minute === minute) return v.cache.churn;
    const first = Math.max(v.since, minute - HISTORY_MINUTES);
    const windowMinutes = Math.max(0, minute - first);
    const disks: DiskChurn[] = [];
    const regions: HotRegion[] = [];
    for (const [index, d] of [...v.disks].sort((a, b) => a[0] - b[0])) {
      const series = new Array<number>(windowMinutes).fill(0);
      for (const [m, bytes] of d.minutes) {
        if (m >= first && m < minute) series[m - first] = bytes;
      }
      const bytes = series.reduce((n, b) => n + b, 0);
      const [p1, p5, p15, p60] = PEAK_WINDOWS.map((w) => peakOf(series, w));
      disks.push({
        index,
        bytes,
        // Per real hour: the window covers windowMinutes × bucketMs.
        avgBytesPerHour:
          windowMinutes === 0
            ? 0
            : Math.round((bytes / (windowMinutes * this.bucketMs)) * 3_600_000),
        peakBytes1m: p1 ?? 0,
        peakBytes5m: p5 ?? 0,
        peakBytes15m: p15 ?? 0,
        peakBytes1h: p60 ?? 0,
      });
      const sums = new Map<number, number>();
      for (const [hour, byRegion] of d.regions) {
        if ((hour + 1) * 60 <= first) continue;
        for (const [r, b] of byRegion) sums.set(r, (sums.get(r) ?? 0) + b);
      }
      for (const [r, b] of sums) {
        regions.push({ disk: index, offset: r * REGION_BYTES, length: REGION_BYTES, bytes: b });
      }
    }
    const hotRegions = regions
      .sort((a, b) => b.bytes - a.bytes || a.disk - b.disk || a.offset - b.offset)
      .slice(0, TOP_REGIONS);
    const churn: VmChurn = { windowMinutes, bucketMs: this.bucketMs, disks, hotRegions };
    v.cache = { minute, churn };
    return churn;
  }

  /** Drops a VM's history (deleted). */
  forget(vm: string): void {
    this.vms.delete(vm);
  }

  toJSON(): ChurnFileBody {
    const vms: ChurnFileBody['vms'] = {};
    for (const [name, v] of this.vms) {
      const disks: ChurnFileBody['vms'][string]['disks'] = {};
      for (const [i, d] of v.disks) {
        disks[String(i)] = {
          m: [...d.minutes],
          r: [...d.regions].map(([h, rs]) => [h, [...rs]] as [number, Array<[number, number]>]),
        };
      }
      vms[name] = { since: v.since, disks };
    }
    return { version: 1, bucketMs: this.bucketMs, vms };
  }

  /**
   * History from a file body; what is older than the window at `now` is dropped. A file
   * counted in another bucket length (a development host's) is not read: its indices are
   * other times.
   */
  static fromJSON(body: unknown, now: number, bucketMs: number = MINUTE_MS): ChurnStats {
    const stats = new ChurnStats(bucketMs);
    const b = body as Partial<ChurnFileBody> | null;
    if (b?.version !== 1 || typeof b.vms !== 'object' || b.vms === null) return stats;
    if ((b.bucketMs ?? MINUTE_MS) !== bucketMs) return stats;
    for (const [name, v] of Object.entries(b.vms)) {
      const disks = new Map<number, DiskSeries>();
      for (const [i, d] of Object.entries(v.disks ?? {})) {
        disks.set(Number(i), {
          minutes: new Map(Array.isArray(d.m) ? d.m : []),
          regions: new Map((Array.isArray(d.r) ? d.r : []).map(([h, rs]) => [h, new Map(rs)])),
        });
      }
      stats.vms.set(name, { since: Number(v.since) || 0, disks });
    }
    stats.prune(Math.floor(now / bucketMs));
    return stats;
  }

  private prune(minute: number): void {
    const oldest = minute - HISTORY_MINUTES;
    for (const v of this.vms.values()) {
      for (const d of v.disks.values()) {
        for (const m of d.minutes.keys()) if (m < oldest) d.minutes.delete(m);
        for (const h of d.regions.keys()) if ((h + 1) * 60 <= oldest) d.regions.delete(h);
      }
    }
  }
}

/** The largest sum of `w` consecutive values (the whole series when shorter). */
function peakOf(series: readonly number[], w: number): number {
  let sum = 0;
  let best = 0;
  for (let i = 0; i < series.length; i++) {
    sum += series[i] ?? 0;
    if (i >= w) sum -= series[i - w] ?? 0;
    if (sum > best) best = sum;
  }
  return best;
}
