import { describe, expect, it } from 'vitest';
import { ChurnStats, MINUTE_MS, REGION_BYTES } from './churn-stats.ts';

const MiB = 1024 * 1024;
const T0 = Date.UTC(2026, 0, 1);

describe('ChurnStats', () => {
  it('averages and peaks over completed minutes, per disk', () => {
    const s = new ChurnStats();
    // 10 minutes: disk 0 writes 1 MiB a minute, except 6 MiB in minute 4; disk 1 only once.
    for (let m = 0; m < 10; m++) {
      s.record('vm1', 0, 0, m === 4 ? 6 * MiB : MiB, T0 + m * MINUTE_MS + 1000);
    }
    s.record('vm1', 1, 0, 2 * MiB, T0 + 3 * MINUTE_MS);
    // The current (11th) minute's writes are not counted yet.
    s.record('vm1', 0, 0, 100 * MiB, T0 + 10 * MINUTE_MS + 5);
    const c = s.snapshot('vm1', T0 + 10 * MINUTE_MS + 10)!;
    expect(c.windowMinutes).toBe(10);
    const d0 = c.disks[0]!;
    expect(d0.bytes).toBe(15 * MiB);
    expect(d0.avgBytesPerHour).toBe(90 * MiB); // 15 MiB in 10 minutes
    expect(d0.peakBytes1m).toBe(6 * MiB);
    expect(d0.peakBytes5m).toBe(10 * MiB);
    expect(d0.peakBytes1h).toBe(15 * MiB);
    expect(c.disks[1]).toMatchObject({ index: 1, bytes: 2 * MiB, peakBytes1m: 2 * MiB });
  });

  it('names the hot regions, top 5, most bytes first', () => {
    const s = new ChurnStats();
    const t = T0 + 30_000;
    for (let r = 0; r < 8; r++) s.record('db', 0, r * REGION_BYTES + 4096, (r + 1) * MiB, t);
    s.record('db', 1, 3 * REGION_BYTES, 20 * MiB, t);
    const c = s.snapshot('db', T0 + 2 * MINUTE_MS)!;
    expect(c.hotRegions).toHaveLength(5);
    expect(c.hotRegions[0]).toEqual({
      disk: 1,
      offset: 3 * REGION_BYTES,
      length: REGION_BYTES,
      bytes: 20 * MiB,
    });
    expect(c.hotRegions.slice(1).map((h) => h.offset / REGION_BYTES)).toEqual([7, 6, 5, 4]);
  });

  it('forgets what is older than 24 hours', () => {
    const s = new ChurnStats();
    s.record('vm', 0, 0, 50 * MiB, T0);
    s.record('vm', 0, 0, MiB, T0 + 25 * 60 * MINUTE_MS);
    const c = s.snapshot('vm', T0 + 25 * 60 * MINUTE_MS + MINUTE_MS)!;
    expect(c.windowMinutes).toBe(24 * 60);
    expect(c.disks[0]!.bytes).toBe(MiB);
    expect(c.hotRegions[0]!.bytes).toBe(MiB);
  });

  it('keeps its history through toJSON / fromJSON', () => {
    const s = new ChurnStats();
    for (let m = 0; m < 3; m++) s.record('vm', 0, m * REGION_BYTES, MiB, T0 + m * MINUTE_MS);
    const now = T0 + 5 * MINUTE_MS;
    const copy = ChurnStats.fromJSON(JSON.parse(JSON.stringify(s.toJSON())), now);
    expect(copy.snapshot('vm', now)).toEqual(s.snapshot('vm', now));
    expect(ChurnStats.fromJSON({ version: 9 }, now).snapshot('vm', now)).toBeUndefined();
  });

  it('counts in a development bucket length and says it in the snapshot', () => {
    const B = 2_000;
    const s = new ChurnStats(B);
    // 20 buckets of 2 s: 1 MiB each, 3 MiB in bucket 7; the running bucket is not counted.
    for (let b = 0; b < 20; b++) s.record('vm', 0, 0, b === 7 ? 3 * MiB : MiB, T0 + b * B + 10);
    s.record('vm', 0, 0, 50 * MiB, T0 + 20 * B + 1);
    const c = s.snapshot('vm', T0 + 20 * B + 500)!;
    expect(c.bucketMs).toBe(B);
    expect(c.windowMinutes).toBe(20);
    const d = c.disks[0]!;
    expect(d.bytes).toBe(22 * MiB);
    expect(d.peakBytes1m).toBe(3 * MiB);
    expect(d.peakBytes5m).toBe(7 * MiB);
    expect(d.peakBytes15m).toBe(17 * MiB);
    expect(d.peakBytes1h).toBe(22 * MiB);
    // Per real hour: 22 MiB in 40 s.
    expect(d.avgBytesPerHour).toBe(Math.round((22 * MiB * 3600) / 40));
    // The next bucket, not the next minute, brings the next snapshot.
    expect(s.snapshot('vm', T0 + 20 * B + 1_900)).toBe(c);
    expect(s.snapshot('vm', T0 + 21 * B)!.disks[0]!.bytes).toBe(72 * MiB);
    // A production host's snapshot says a minute.
    const p = new ChurnStats();
    p.record('vm', 0, 0, MiB, T0);
    expect(p.snapshot('vm', T0 + MINUTE_MS)!.bucketMs).toBe(MINUTE_MS);
  });

  it('refuses a bucket length outside 1 s to 60 s', () => {
    expect(() => new ChurnStats(999)).toThrow(RangeError);
    expect(() => new ChurnStats(60_001)).toThrow(RangeError);
  });

  it('does not read history counted in another bucket length', () => {
    const s = new ChurnStats(5_000);
    s.record('vm', 0, 0, MiB, T0);
    const body = JSON.parse(JSON.stringify(s.toJSON())) as unknown;
    const now = T0 + 10_000;
    expect(ChurnStats.fromJSON(body, now, 5_000).snapshot('vm', now)!.disks[0]!.bytes).toBe(MiB);
    expect(ChurnStats.fromJSON(body, now).snapshot('vm', now)).toBeUndefined();
    // A file from before the length was written is minutes.
    const old = { ...new ChurnStats().toJSON(), bucketMs: undefined };
    expect(ChurnStats.fromJSON(old, now).bucketMs).toBe(MINUTE_MS);
  });

  it('a snapshot changes at most once a minute', () => {
    const s = new ChurnStats();
    s.record('vm', 0, 0, MiB, T0);
    const a = s.snapshot('vm', T0 + MINUTE_MS);
    s.record('vm', 0, 0, MiB, T0 + MINUTE_MS + 1);
    expect(s.snapshot('vm', T0 + MINUTE_MS + 59_000)).toBe(a);
    expect(s.snapshot('vm', T0 + 2 * MINUTE_MS)!.disks[0]!.bytes).toBe(2 * MiB);
  });
});
