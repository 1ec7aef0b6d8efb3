/**
 * Model-based test of the replica store: a seeded random series of segments is applied to a
 * small replica (2 disks × 8 MiB) while the test keeps the shadow of every point; every
 * retained point must read back exactly as its shadow, for random ranges and whole disks;
 * pruning must drop exactly the points the retention rule names; a reopen rebuilds the index.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log/log.ts';
import { FakeClock } from '../../common/time/clock.ts';
import { openReplicaStore } from '../../agent/host/recovery/replica-store.ts';
import type { IncomingSegment, ReplicaStore } from '../../agent/host/recovery/types.ts';
import type { RawDisk } from '../../agent/host/vm/raw-disk.ts';
import {
  applyToShadow,
  firstDifference,
  initialContents,
  makeSegment,
  openDisks,
  writeDiskImages,
} from '../helpers/replica-model.ts';
import { seededRandom, testSeed } from '../helpers/seeded-random.ts';

const MiB = 1 << 20;
const SIZES = [8 * MiB, 8 * MiB];
const H = 3_600_000;
const RETENTION_H = 1;
const APP_RETENTION_H = 3;
const SEGMENTS = 60;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('replica store against a model', () => {
  it('reads every retained point exactly, prunes exactly the expired points', async () => {
    const seed = testSeed('replica store model');
    const rnd = seededRandom(seed);
    const dir = mkdtempSync(join(tmpdir(), 'ss-replica-model-'));
    dirs.push(dir);
    const base = initialContents(seed, SIZES);
    const diskPaths = writeDiskImages(dir, base);
    const disks = openDisks(diskPaths);
    const clock = new FakeClock();
    const open = (): Promise<ReplicaStore> =>
      openReplicaStore({
        dir: join(dir, 'recovery'),
        vmId: 'vm-model',
        disks,
        diskPaths, // parallel reads of old contents; replica-store.test.ts covers serial
        clock,
        log: silentLogger,
        retentionHours: RETENTION_H,
        appConsistentRetentionHours: APP_RETENTION_H,
      });
    let store = await open();
    const segments: IncomingSegment[] = [];
    const shadows = new Map<number, Buffer[]>(); // seq → disks at that point (retained only)
    let current = base.map((b) => Buffer.from(b));
    let retained: IncomingSegment[] = [];

    for (let seq = 1; seq <= SEGMENTS; seq++) {
      clock.advance(rnd.range(1, 20) * 60_000);
      const seg = makeSegment(seed, seq, SIZES, clock.now());
      expect(await store.apply(seg)).toBe('applied');
      segments.push(seg);
      retained.push(seg);
      current = current.map((b) => Buffer.from(b));
      applyToShadow(current, seg);
      shadows.set(seq, current);
      checkRandomReads(store, rnd, retained, shadows);
      if (seq % 7 === 0) {
        retained = await pruneAndCheck(store, clock.now(), retained, shadows);
      }
      if (seq % 11 === 0) {
        await store.close();
        store = await open();
        expect(store.openReport.rolledBack).toBeUndefined();
      }
    }
    retained = await pruneAndCheck(store, clock.now(), retained, shadows);
    expect(retained.length).toBeGreaterThan(1);
    checkWholeDisks(store, disks, retained, shadows);
    checkUndoFiles(store, join(dir, 'recovery', 'undo'), retained);
    await store.close();
  });
});

function checkRandomReads(
  store: ReplicaStore,
  rnd: ReturnType<typeof seededRandom>,
  retained: readonly IncomingSegment[],
  shadows: ReadonlyMap<number, Buffer[]>,
): void {
  for (let i = 0; i < 6; i++) {
    const seg = rnd.pick(retained);
    const disk = rnd.int(SIZES.length);
    const offset = rnd.int(SIZES[disk]!);
    const length = Math.min(
      rnd.range(1, rnd.pick([100, 64 * 1024, 3 * MiB])),
      SIZES[disk]! - offset,
    );
    const got = store.read(disk, offset, length, seg.point.id);
    const want = shadows.get(seg.seq)![disk]!.subarray(offset, offset + length);
    expect(
      firstDifference(got, want),
      `point ${seg.seq} disk ${disk} ${offset}+${length}`,
    ).toBeUndefined();
  }
}

/** Prunes and checks the store dropped exactly what the retention rule names. */
async function pruneAndCheck(
  store: ReplicaStore,
  now: number,
  retained: IncomingSegment[],
  shadows: Map<number, Buffer[]>,
): Promise<IncomingSegment[]> {
  const latest = retained.at(-1)!;
  const expired = (s: IncomingSegment): boolean =>
    s !== latest &&
    s.point.time < now - (s.point.type === 'app-consistent' ? APP_RETENTION_H : RETENTION_H) * H;
  const dropped = await store.prune(now);
  expect(dropped.map((p) => p.id)).toEqual(retained.filter(expired).map((s) => s.point.id));
  const kept = retained.filter((s) => !expired(s));
  expect(store.points().map((p) => p.id)).toEqual(kept.map((s) => s.point.id));
  for (const s of retained.filter(expired)) {
    shadows.delete(s.seq);
    expect(() => store.read(0, 0, 1, s.point.id)).toThrow(/no recovery point/);
  }
  return kept;
}

function checkWholeDisks(
  store: ReplicaStore,
  disks: readonly RawDisk[],
  retained: readonly IncomingSegment[],
  shadows: ReadonlyMap<number, Buffer[]>,
): void {
  for (const seg of retained) {
    for (let d = 0; d < disks.length; d++) {
      const got = store.read(d, 0, SIZES[d]!, seg.point.id);
      expect(firstDifference(got, shadows.get(seg.seq)![d]!), `point ${seg.seq} disk ${d}`).toBe(
        undefined,
      );
    }
  }
  const latest = shadows.get(retained.at(-1)!.seq)!;
  disks.forEach((disk, d) => {
    expect(firstDifference(disk.readSync(0, SIZES[d]!), latest[d]!)).toBeUndefined();
  });
}

/** Exactly the segments after the oldest retained point that changed something keep undo. */
function checkUndoFiles(
  store: ReplicaStore,
  undoDir: string,
  retained: readonly IncomingSegment[],
): void {
  const oldest = retained[0]!.seq;
  const want = Array.from({ length: retained.at(-1)!.seq - oldest }, (_, i) => oldest + 1 + i);
  const files = readdirSync(undoDir).map((n) => Number(n.slice(0, 12)));
  // Segments without extents write no undo file.
  expect(files.every((s) => want.includes(s))).toBe(true);
  expect(files.length).toBeGreaterThan(0);
  expect(store.stats().undoBytes).toBeGreaterThan(0);
  expect(store.stats().count).toBe(retained.length);
}
