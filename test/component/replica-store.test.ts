/**
 * Replica store behaviours on real files: exactly-once apply (duplicates, gaps, malformed
 * segments), revert, commit, rebase, corrupt undo data, and reads during an in-flight apply.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryLevel } from 'memory-level';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log/log.ts';
import { FakeClock } from '../../common/time/clock.ts';
import type { LevelLike } from '../../agent/host/recovery/recovery-db.ts';
import { openReplicaStore } from '../../agent/host/recovery/replica-store.ts';
import { syncReader } from '../../agent/host/recovery/old-contents-reader.ts';
import { writeUndoFile } from '../../agent/host/recovery/undo-file.ts';
import { UndoStager } from '../../agent/host/recovery/undo-stager.ts';
import type { IncomingSegment, ReplicaStore } from '../../agent/host/recovery/types.ts';
import type { RawDisk } from '../../agent/host/vm/raw-disk.ts';
import {
  applyToShadow,
  firstDifference,
  initialContents,
  makeSegment,
  openDisks,
  segmentTime,
  writeDiskImages,
} from '../helpers/replica-model.ts';
import { seededRandom } from '../helpers/seeded-random.ts';
import { waitFor } from '../helpers/wait-for.ts';

const MiB = 1 << 20;
const SIZES = [2 * MiB, 2 * MiB];
const SEED = 4242;

interface Fixture {
  dir: string;
  disks: RawDisk[];
  store: ReplicaStore;
  seg(seq: number): IncomingSegment;
  shadow(seq: number): Buffer[];
  reopen(): Promise<ReplicaStore>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function fixture(level?: LevelLike): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'ss-replica-'));
  const base = initialContents(SEED, SIZES);
  const disks = openDisks(writeDiskImages(dir, base));
  const open = (): Promise<ReplicaStore> =>
    openReplicaStore({
      dir: join(dir, 'recovery'),
      vmId: 'vm-1',
      disks,
      clock: new FakeClock(),
      log: silentLogger,
      retentionHours: 24,
      ...(level ? { level } : {}),
    });
  const seg = (seq: number): IncomingSegment => makeSegment(SEED, seq, SIZES, segmentTime(seq));
  const f: Fixture = {
    dir,
    disks,
    store: await open(),
    seg,
    shadow(seq) {
      const s = base.map((b) => Buffer.from(b));
      for (let i = 1; i <= seq; i++) applyToShadow(s, seg(i));
      return s;
    },
    async reopen() {
      await f.store.close();
      f.store = await open();
      return f.store;
    },
  };
  cleanups.push(async () => {
    await f.store.close();
    for (const d of disks) await d.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return f;
}

async function applyUpTo(f: Fixture, last: number): Promise<void> {
  for (let seq = f.store.lastApplied + 1; seq <= last; seq++) {
    expect(await f.store.apply(f.seg(seq))).toBe('applied');
  }
}

function expectDisksAt(f: Fixture, seq: number): void {
  const want = f.shadow(seq);
  f.disks.forEach((d, i) => {
    expect(firstDifference(d.readSync(0, SIZES[i]!), want[i]!), `disk ${i}`).toBeUndefined();
  });
}

function expectPointReads(f: Fixture, seq: number): void {
  const want = f.shadow(seq);
  SIZES.forEach((size, i) => {
    const got = f.store.read(i, 0, size, `p-${seq}`);
    expect(firstDifference(got, want[i]!), `point ${seq} disk ${i}`).toBeUndefined();
  });
}

function undoFiles(f: Fixture): string[] {
  return readdirSync(join(f.dir, 'recovery', 'undo'));
}

/** A segment that touches something, so its undo file exists. */
function nonEmpty(f: Fixture, seq: number): IncomingSegment {
  const s = f.seg(seq);
  expect(s.extents.length).toBeGreaterThan(0);
  return s;
}

/** Feeds `seg`'s extents to a staging in pieces of `per` (as chunks would arrive). */
async function stage(f: Fixture, seg: IncomingSegment, per: number) {
  const staging = f.store.stageUndo(seg.seq);
  expect(staging).toBeDefined();
  for (let i = 0; i < seg.extents.length; i += per) {
    await staging!.add(seg.extents.slice(i, i + per));
  }
  return staging!;
}

describe('undo staging (apply step 1 while the segment arrives)', () => {
  it('writes the very undo file the apply would, in any split of the chunks', async () => {
    const f = await fixture();
    const seg = nonEmpty(f, 1);
    const reader = syncReader(f.disks);
    const made = (sub: string) => {
      const d = join(f.dir, sub);
      mkdirSync(d);
      return d;
    };
    const plainDir = made('plain');
    const plain = await writeUndoFile({
      dir: plainDir,
      seq: 1,
      extents: seg.extents,
      diskCount: SIZES.length,
      reader,
      buffer: Buffer.alloc(2 * MiB),
    });
    for (const per of [1, 2, 3, 1000]) {
      const stager = new UndoStager({
        dir: made(`staged-${per}`),
        seq: 1,
        diskCount: SIZES.length,
        reader,
        buffer: Buffer.alloc(2 * MiB),
      });
      for (let i = 0; i < seg.extents.length; i += per) {
        await stager.add(seg.extents.slice(i, i + per));
      }
      const staged = await stager.finish();
      expect(staged.bytes).toBe(plain.bytes);
      expect(readFileSync(staged.path).equals(readFileSync(plain.path)), `split ${per}`).toBe(true);
    }
  });

  it('applies through stagings: disks and every point as without them', async () => {
    const f = await fixture();
    for (let seq = 1; seq <= 6; seq++) {
      const seg = f.seg(seq); // some are empty: their staging is given up, no file made
      await stage(f, seg, [1, 2, 3, 5, 8, 1000][seq - 1]!);
      expect(await f.store.apply(seg)).toBe('applied');
    }
    expectDisksAt(f, 6);
    for (let seq = 1; seq <= 6; seq++) expectPointReads(f, seq);
    const nonEmptyCount = [1, 2, 3, 4, 5, 6].filter((q) => f.seg(q).extents.length > 0).length;
    expect(f.store.stats().stagedApplies).toBe(nonEmptyCount);
  });

  it('stages a live segment: ranges in write order, synced as it goes, read back after a reopen', async () => {
    const f = await fixture();
    await applyUpTo(f, 1);
    for (let seq = 2; seq <= 5; seq++) {
      const seg = f.seg(seq);
      // A live segment's staging sees each range when a write first touches it: not sorted.
      const order = seg.extents.map((_, i) => i);
      const rnd = seededRandom(seq);
      for (let i = order.length - 1; i > 0; i--) {
        const j = rnd.int(i + 1);
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      const staging = f.store.stageUndo(seq, { live: true });
      expect(staging).toBeDefined();
      for (const i of order) await staging!.add([seg.extents[i]!]);
      expect(await f.store.apply(seg)).toBe('applied');
    }
    expect(f.store.stats().stagedApplies).toBe(
      [2, 3, 4, 5].filter((q) => f.seg(q).extents.length > 0).length,
    );
    expectDisksAt(f, 5);
    for (let seq = 1; seq <= 5; seq++) expectPointReads(f, seq);
    await f.reopen(); // the unsorted undo files are read back from disk
    for (let seq = 1; seq <= 5; seq++) expectPointReads(f, seq);
    await f.store.revertTo('p-2'); // and a rollback through them restores the disks
    expectDisksAt(f, 2);
  });

  it('is dropped when another change ran since it began, and the apply is still right', async () => {
    const f = await fixture();
    await applyUpTo(f, 3);
    // Staged against the disks at point 3, then a revert to point 2 changes them: the apply
    // of the new segment 3 must not use old contents read before the revert.
    await f.store.revertTo('p-2');
    const seg3 = { ...f.seg(3), point: { ...f.seg(3).point, id: 'p-3b' } };
    expect(f.store.stageUndo(4)).toBeUndefined(); // not the next segment
    const staging = f.store.stageUndo(3)!;
    await staging.add(seg3.extents.slice(0, 2));
    await f.store.prune(); // a mutation (nothing to prune): the staging no longer counts
    await staging.add(seg3.extents.slice(2));
    expect(await f.store.apply(seg3)).toBe('applied');
    expect(f.store.stats().stagedApplies).toBe(0); // step 1 ran afresh
    expectDisksAt(f, 3);
    const want = f.shadow(2);
    SIZES.forEach((size, i) => {
      const got = f.store.read(i, 0, size, 'p-2');
      expect(firstDifference(got, want[i]!), `point 2 disk ${i}`).toBeUndefined();
    });
    expect(undoFiles(f).filter((n) => n.includes('000000000004'))).toEqual([]);
  });

  it('leaves no file behind when given up, and none for a segment that is refused', async () => {
    const f = await fixture();
    await applyUpTo(f, 1);
    const before = undoFiles(f);
    await stage(f, nonEmpty(f, 2), 4);
    expect(undoFiles(f).length).toBe(before.length + 1); // the partial file
    expect(f.store.stageUndo(2)).toBeDefined(); // a new staging replaces the old one
    await expect(f.store.apply(f.seg(3))).rejects.toMatchObject({
      code: 'SS_SEGMENT_OUT_OF_ORDER',
    });
    await f.reopen(); // the orphan of a dropped or interrupted staging is deleted at open
    expect(undoFiles(f)).toEqual(before);
    expect(await f.store.apply(f.seg(2))).toBe('applied');
    expectDisksAt(f, 2);
  });
});

describe('replica store', () => {
  it('answers a resend with duplicate and changes nothing', async () => {
    const f = await fixture();
    await applyUpTo(f, 3);
    const files = undoFiles(f);
    expect(await f.store.apply(f.seg(2))).toBe('duplicate');
    expect(await f.store.apply(f.seg(3))).toBe('duplicate');
    expect(f.store.points().map((p) => p.id)).toEqual(['p-1', 'p-2', 'p-3']);
    expect(undoFiles(f)).toEqual(files);
    expectDisksAt(f, 3);
  });

  it('refuses a segment after a gap, leaving no trace', async () => {
    const f = await fixture();
    await applyUpTo(f, 2);
    await expect(f.store.apply(f.seg(4))).rejects.toMatchObject({
      code: 'SS_SEGMENT_OUT_OF_ORDER',
      details: { seq: 4, expected: 3 },
    });
    expect(f.store.lastApplied).toBe(2);
    expect(f.store.state).toBe('ready');
    expectDisksAt(f, 2);
    expect(await f.store.apply(f.seg(3))).toBe('applied');
  });

  it('refuses malformed segments before touching the replica', async () => {
    const f = await fixture();
    await applyUpTo(f, 1);
    const good = nonEmpty(f, 2);
    const data = Buffer.alloc(10, 1);
    const bad: IncomingSegment[] = [
      { ...good, point: { ...good.point, segment: 7 } },
      { ...good, extents: [{ disk: 2, offset: 0, length: 10, data }] },
      { ...good, extents: [{ disk: 0, offset: SIZES[0]! - 5, length: 10, data }] },
      { ...good, extents: [{ disk: 0, offset: 0, length: 11, data }] },
      {
        ...good,
        extents: [
          { disk: 0, offset: 100, length: 10, data },
          { disk: 0, offset: 105, length: 10, data },
        ],
      },
      { ...good, point: { ...good.point, id: 'p-1' } },
    ];
    for (const seg of bad) {
      await expect(f.store.apply(seg)).rejects.toMatchObject({ code: 'SS_PROTOCOL' });
    }
    expect(f.store.lastApplied).toBe(1);
    expect(undoFiles(f).filter((n) => n.startsWith('000000000002'))).toEqual([]);
    expectDisksAt(f, 1);
    expect(await f.store.apply(good)).toBe('applied');
  });

  it('reverts to an older point, drops later points, then applies anew', async () => {
    const f = await fixture();
    await applyUpTo(f, 6);
    await f.store.revertTo('p-3');
    expect(f.store.lastApplied).toBe(3);
    expect(f.store.points().map((p) => p.id)).toEqual(['p-1', 'p-2', 'p-3']);
    expectDisksAt(f, 3);
    for (const seq of [1, 2, 3]) expectPointReads(f, seq);
    expect(() => f.store.read(0, 0, 1, 'p-5')).toThrow(/no recovery point/);
    await applyUpTo(f, 5);
    expectDisksAt(f, 5);
    await f.reopen();
    for (const seq of [1, 3, 5]) expectPointReads(f, seq);
  });

  it('commits a chosen point: other points and all undo data are discarded', async () => {
    const f = await fixture();
    await applyUpTo(f, 5);
    expect(f.store.stats()).toMatchObject({ count: 5, lastApplied: 5 });
    expect(f.store.stats().undoBytes).toBeGreaterThan(0);
    await f.store.commit('p-2');
    expectDisksAt(f, 2);
    expect(f.store.points().map((p) => p.id)).toEqual(['p-2']);
    expect(f.store.stats()).toMatchObject({ count: 1, undoBytes: 0, lastApplied: 2 });
    expect(undoFiles(f)).toEqual([]);
    expectPointReads(f, 2);
  });

  it('commits the latest point when none is named', async () => {
    const f = await fixture();
    await applyUpTo(f, 4);
    await f.store.commit();
    expect(f.store.points().map((p) => p.id)).toEqual(['p-4']);
    expect(undoFiles(f)).toEqual([]);
    expectDisksAt(f, 4);
  });

  it('rebases after a resync: no points, and the next seq is expected', async () => {
    const f = await fixture();
    await applyUpTo(f, 3);
    await f.store.rebase(10);
    expect(f.store.points()).toEqual([]);
    expect(undoFiles(f)).toEqual([]);
    await expect(f.store.apply(f.seg(4))).resolves.toBe('duplicate');
    await expect(f.store.apply(f.seg(12))).rejects.toMatchObject({
      code: 'SS_SEGMENT_OUT_OF_ORDER',
    });
    await f.reopen();
    expect(f.store.lastApplied).toBe(10);
  });

  it('refuses to revert over corrupt undo data and leaves the disks untouched', async () => {
    const f = await fixture();
    await applyUpTo(f, 4);
    const path = join(f.dir, 'recovery', 'undo', '000000000004.undo');
    nonEmpty(f, 4);
    const bytes = readFileSync(path);
    bytes[100] = bytes[100]! ^ 0xff; // inside the data region, after the 64-byte header
    writeFileSync(path, bytes);
    await expect(f.store.revertTo('p-1')).rejects.toMatchObject({ code: 'SS_UNDO_CORRUPT' });
    expect(f.store.state).toBe('ready');
    expect(f.store.lastApplied).toBe(4);
    expectDisksAt(f, 4);
    await f.reopen();
    expectDisksAt(f, 4);
  });

  it('drops the points an unreadable undo file served when it reopens, keeps the rest', async () => {
    const f = await fixture();
    await applyUpTo(f, 5);
    nonEmpty(f, 3);
    const path = join(f.dir, 'recovery', 'undo', '000000000003.undo');
    const bytes = readFileSync(path);
    bytes[20] = bytes[20]! ^ 0xff; // inside the header: the file cannot be indexed
    writeFileSync(path, bytes);
    await f.reopen();
    expect(f.store.openReport.pointsLost).toEqual(['p-1', 'p-2']);
    expect(f.store.points().map((p) => p.id)).toEqual(['p-3', 'p-4', 'p-5']);
    expect(undoFiles(f)).not.toContain('000000000003.undo');
    for (const seq of [3, 4, 5]) expectPointReads(f, seq);
    expectDisksAt(f, 5);
  });

  it('refuses to open with another disk set', async () => {
    const f = await fixture();
    await f.store.close();
    await expect(
      openReplicaStore({
        dir: join(f.dir, 'recovery'),
        vmId: 'vm-1',
        disks: f.disks.slice(0, 1),
        clock: new FakeClock(),
        log: silentLogger,
        retentionHours: 24,
      }),
    ).rejects.toMatchObject({ code: 'SS_CONFLICT' });
    await f.reopen();
  });

  it('serves committed points while a later apply is in flight', async () => {
    const gate = gatedLevel();
    const f = await fixture(gate.level);
    await applyUpTo(f, 2);
    gate.hold = true;
    const applying = f.store.apply(nonEmpty(f, 3));
    await waitFor(() => gate.waiting, { what: 'apply to reach its commit' });
    expect(f.store.state).toBe('applying');
    expectDisksAt(f, 3); // step 3 is done: the disks already hold segment 3
    expectPointReads(f, 2);
    expectPointReads(f, 1);
    gate.release();
    expect(await applying).toBe('applied');
    expectPointReads(f, 2);
    expectPointReads(f, 3);
  });
});

/** memory-level whose commit batch (the one setting lastApplied) can be held open. */
function gatedLevel(): { level: LevelLike; hold: boolean; waiting: boolean; release(): void } {
  const db = new MemoryLevel<string, string>() as unknown as LevelLike;
  let open: (() => void) | undefined;
  const gate = {
    hold: false,
    waiting: false,
    release: () => open?.(),
    level: {
      open: () => db.open(),
      get: (k: string) => db.get(k),
      put: (k: string, v: string, o?: { sync?: boolean }) => db.put(k, v, o),
      values: (r: { gte: string; lt: string }) => db.values(r),
      close: () => db.close(),
      batch: async (ops: Parameters<LevelLike['batch']>[0], o?: { sync?: boolean }) => {
        if (gate.hold && ops.some((op) => op.key === 'lastApplied')) {
          gate.waiting = true;
          await new Promise<void>((r) => (open = r));
        }
        await db.batch(ops, o);
      },
    } satisfies LevelLike,
  };
  return gate;
}
