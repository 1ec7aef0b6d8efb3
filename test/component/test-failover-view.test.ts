/**
 * The test-failover view (agent/host/failover/test-view.ts) over a real replica store, served
 * by our NBD server and driven by qemu-io / qemu-img: it reads the chosen point, keeps the
 * test VM's writes private, never touches the replica or the store, and stays at its point
 * while new segments are applied. Also a seeded model check of the overlay at the device
 * level, and (printed, not asserted) the time to open a view of 1 GiB and 8 GiB disks.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import {
  OVERLAY_BLOCK,
  openTestView,
  serveTestView,
  type PointSource,
  type TestView,
} from '../../agent/host/failover/test-view.ts';
import type { NbdExport } from '../../agent/host/nbd/server.ts';
import { openReplicaStore } from '../../agent/host/recovery/replica-store.ts';
import type { IncomingSegment, ReplicaStore } from '../../agent/host/recovery/types.ts';
import { RawDisk, createSparseImage } from '../../agent/host/vm/raw-disk.ts';
import { silentLogger } from '../../common/log/log.ts';
import { FakeClock } from '../../common/time/clock.ts';
import { MiB, run, sha256File } from '../helpers/nbd.ts';
import {
  firstDifference,
  initialContents,
  makeSegment,
  openDisks,
  segmentTime,
  shadowAt,
  writeDiskImages,
} from '../helpers/replica-model.ts';
import { seededRandom, testSeed } from '../helpers/seeded-random.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ss-test-view-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function openStore(dir: string, disks: RawDisk[]): Promise<ReplicaStore> {
  const store = await openReplicaStore({
    dir: join(dir, 'recovery'),
    vmId: 'vm-1',
    disks,
    clock: new FakeClock(),
    log: silentLogger,
    retentionHours: 24,
  });
  cleanups.push(async () => {
    await store.close();
    for (const d of disks) await d.close();
  });
  return store;
}

async function serve(dir: string, view: TestView): Promise<NbdExport[]> {
  const exports = await serveTestView(view, {
    exportName: (i) => `vm-1-test-${i}`,
    socketPath: (i) => join(dir, `test-${i}.sock`),
    log: silentLogger,
  });
  cleanups.push(async () => {
    for (const e of exports) await e.close();
    await view.close();
  });
  return exports;
}

const qemuIo = (uri: string, ...commands: string[]) =>
  run('qemu-io', ['-f', 'raw', uri, ...commands.flatMap((c) => ['-c', c])]);

async function compare(file: string, uri: string): Promise<number | null> {
  return (await run('qemu-img', ['compare', '-q', '-f', 'raw', '-F', 'raw', file, uri])).code;
}

function shadowFile(dir: string, name: string, contents: Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, contents);
  return path;
}

const SIZES = [8 * MiB, 4 * MiB];
const SEED = 777;

describe('test-failover view through NBD', () => {
  it('serves the older point, keeps writes private and does not move with new segments', async () => {
    const dir = tempDir();
    const base = initialContents(SEED, SIZES);
    const diskPaths = writeDiskImages(dir, base);
    const store = await openStore(dir, openDisks(diskPaths));
    const seg = (s: number): IncomingSegment => makeSegment(SEED, s, SIZES, segmentTime(s));
    for (const s of [1, 2]) expect(await store.apply(seg(s))).toBe('applied');
    const at1 = shadowAt(base, 1, seg);
    const at2 = shadowAt(base, 2, seg);
    expect(firstDifference(at1[0]!, at2[0]!), 'segment 2 changes disk 0').toBeDefined();

    const view = await openTestView({
      store,
      pointId: 'p-1',
      diskSizes: SIZES,
      overlayDir: join(dir, 'vm-1-test'),
    });
    const exports = await serve(dir, view);
    const uri = (i: number) => exports[i]!.uri;
    const files1 = at1.map((b, i) => shadowFile(dir, `p1-${i}.raw`, b));
    for (const i of [0, 1]) expect(await compare(files1[i]!, uri(i)), `disk ${i}`).toBe(0);
    expect(await compare(shadowFile(dir, 'p2-0.raw', at2[0]!), uri(0))).toBe(1);

    const replicaBefore = diskPaths.map(sha256File);
    const io = await qemuIo(
      uri(0),
      'write -P 0x5a 4095 3', // across a block boundary: two copy-ups
      'write -P 0x6b 1M 64k',
      'write -P 0x7c 1M 100', // partial write into a block already in the overlay
      'write -z 2M 1M',
      'discard 3M 8k',
      'write -z 5000 10', // a zero range inside one block: through the write path
      'flush',
    );
    expect(io.code, io.stderr + io.stdout.toString()).toBe(0);
    const back = await qemuIo(
      uri(0),
      'read -P 0x5a 4095 3',
      'read -P 0x7c 1M 100',
      'read -P 0x6b 1048676 65436',
      'read -P 0 2M 1M',
      'read -P 0 3M 8k',
    );
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout.toString()).not.toMatch(/Pattern verification failed/);

    const expected = Buffer.from(at1[0]!);
    expected.fill(0x5a, 4095, 4098);
    expected.fill(0x6b, MiB, MiB + 64 * 1024);
    expected.fill(0x7c, MiB, MiB + 100);
    expected.fill(0, 2 * MiB, 3 * MiB);
    expected.fill(0, 3 * MiB, 3 * MiB + 8192);
    expected.fill(0, 5000, 5010);
    const expectedFile = shadowFile(dir, 'expected-0.raw', expected);
    expect(await compare(expectedFile, uri(0))).toBe(0);

    // Nothing reached the replica disks or the store.
    expect(diskPaths.map(sha256File)).toEqual(replicaBefore);
    for (const [seq, want] of [[1, at1] as const, [2, at2] as const]) {
      for (const i of [0, 1]) {
        const got = store.read(i, 0, SIZES[i]!, `p-${seq}`);
        expect(firstDifference(got, want[i]!), `point ${seq} disk ${i}`).toBeUndefined();
      }
    }

    // A new segment lands on the replica; the view still shows point 1 plus its own writes.
    expect(await store.apply(seg(3))).toBe('applied');
    expect(diskPaths.map(sha256File)).not.toEqual(replicaBefore);
    expect(await compare(expectedFile, uri(0))).toBe(0);
    expect(await compare(files1[1]!, uri(1))).toBe(0);

    for (const e of exports) await e.close();
    await view.close();
    expect(view.disks.map((d) => existsSync(d.overlayPath))).toEqual([false, false]);
  });

  it('refuses a point the store does not retain, and an overlay folder already in use', async () => {
    const dir = tempDir();
    const base = initialContents(SEED, SIZES);
    const store = await openStore(dir, openDisks(writeDiskImages(dir, base)));
    await store.apply(makeSegment(SEED, 1, SIZES, segmentTime(1)));
    const overlayDir = join(dir, 'overlay');
    await expect(
      openTestView({ store, pointId: 'p-9', diskSizes: SIZES, overlayDir }),
    ).rejects.toMatchObject({ code: 'SS_NOT_FOUND' });
    const view = await openTestView({ store, pointId: 'p-1', diskSizes: SIZES, overlayDir });
    cleanups.push(() => view.close());
    await expect(
      openTestView({ store, pointId: 'p-1', diskSizes: SIZES, overlayDir }),
    ).rejects.toMatchObject({ code: 'SS_IO' });
  });
});

describe('test-failover view: overlay model', () => {
  it('reads like a shadow under random unaligned writes, zeroes and discards', async () => {
    const seed = testSeed('test-view overlay model');
    const rnd = seededRandom(seed);
    const dir = tempDir();
    // A short last block (size not a multiple of the block) and a point with random bytes.
    const size = 40 * OVERLAY_BLOCK + 1234;
    const point = randomBytes(size);
    const store: PointSource = {
      points: () => [{ id: 'p', time: 0, type: 'crash-consistent', segment: 1 }],
      read: (_disk, offset, length) => Buffer.from(point.subarray(offset, offset + length)),
    };
    const view = await openTestView({
      store,
      pointId: 'p',
      diskSizes: [size],
      overlayDir: join(dir, 'o'),
    });
    cleanups.push(() => view.close());
    const disk = view.disks[0]!;
    const shadow = Buffer.from(point);
    for (let op = 0; op < 2000; op++) {
      const offset = rnd.int(size);
      const length = rnd.range(1, Math.min(size - offset, rnd.pick([10, 5000, 3 * OVERLAY_BLOCK])));
      const kind = rnd.int(10);
      if (kind < 5) {
        const data = rnd.fill(Buffer.alloc(length));
        await disk.write(offset, data, rnd.int(8) === 0);
        data.copy(shadow, offset);
      } else if (kind < 7) {
        await disk.trim(offset, length, false);
        shadow.fill(0, offset, offset + length);
      } else if (kind < 8) {
        await disk.writeZeroes(offset, length, true);
        shadow.fill(0, offset, offset + length);
      } else {
        const got = await disk.read(offset, length);
        expect(firstDifference(got, shadow.subarray(offset, offset + length)), `op ${op}`).toBe(
          undefined,
        );
      }
    }
    expect(firstDifference(await disk.read(0, size), shadow), `seed ${seed}`).toBeUndefined();
    expect(firstDifference(await disk.read(size - 7, 7), shadow.subarray(size - 7))).toBe(
      undefined,
    );
  });
});

describe('test-failover view: open time', () => {
  it('opens a view of 1 GiB and 8 GiB disks without copying (timings printed)', async () => {
    for (const gib of [1, 8]) {
      const dir = tempDir();
      const size = gib * 1024 * MiB;
      const path = join(dir, 'disk0.raw');
      createSparseImage(path, size);
      const store = await openStore(dir, [RawDisk.open(path)]);
      const data = Buffer.alloc(4096, 0x42);
      await store.apply({
        seq: 1,
        point: { id: 'p-1', time: segmentTime(1), type: 'crash-consistent', segment: 1 },
        extents: [{ disk: 0, offset: size - 4096, length: 4096, data }],
      });
      const started = performance.now();
      const view = await openTestView({
        store,
        pointId: 'p-1',
        diskSizes: [size],
        overlayDir: join(dir, 'vm-test'),
      });
      const exports = await serve(dir, view);
      const ms = performance.now() - started;
      console.log(`test view open + NBD export, ${gib} GiB disk: ${ms.toFixed(1)} ms`);
      expect(statSync(view.disks[0]!.overlayPath).blocks).toBe(0);
      const read = await qemuIo(
        exports[0]!.uri,
        `read -P 0x42 ${size - 4096} 4k`,
        'read -P 0 0 4k',
      );
      expect(read.code, read.stderr).toBe(0);
      expect(read.stdout.toString()).not.toMatch(/Pattern verification failed/);
    }
  });
});
