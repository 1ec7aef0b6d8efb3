/**
 * The disks of a test-failover VM (R23): each reads a retained recovery point of the replica
 * and keeps the test VM's writes in a private sparse overlay file. The replica disks and the
 * replica store are never written, so replication goes on underneath, and the view does not
 * move when new segments arrive: it reads its point, not the latest. Opening is O(1) whatever
 * the disk size: an empty sparse file per disk and an empty in-memory block map, no copy.
 *
 * API for the lead (not wired into the host agent yet):
 *
 *   const view = await openTestView({ store, pointId, diskSizes, overlayDir });
 *   const exports = await serveTestView(view, {
 *     exportName: (i) => layout.exportName(`${vm}-test`, i),
 *     socketPath: (i) => checkSocketPath(layout.exportSocket(data, `${vm}-test`, i)),
 *     log,
 *   });
 *   …the test VM runs on exports[i].uri…
 *   for (const e of exports) await e.close();
 *   await view.close();            // closes and deletes the overlay files (cleanup-test)
 *
 * - `store` is the VM's open ReplicaStore (only read() and points() are used);
 *   `diskSizes` the replica disks' sizes in the VM's order; `overlayDir` a folder of the test
 *   VM's own (created if missing; overlay-<i>.raw must not exist yet unless `resume`).
 * - Reads prefer overlay blocks (4 KiB): a block the test VM wrote reads from the overlay, a
 *   block it discarded or zeroed reads as zeros, any other from the point via store.read(). A
 *   write that covers part of a block first copies the block's current bytes into the overlay
 *   (copy-up), so blocks are always whole in the overlay.
 * - FLUSH and FUA fdatasync the overlay file, then append the blocks marked since the last
 *   flush to overlay-<i>.map (17-byte records: state, first block, last block) and fdatasync
 *   it, so every write the guest saw made durable survives a crash: `resume: true` reopens
 *   the overlay files and replays their maps (a torn last record is ignored: it was never
 *   acknowledged). Unflushed writes may be lost, as on any disk. Discards and zero-writes of
 *   whole blocks cost no overlay space. `close({ keepOverlay: true })` flushes and keeps the
 *   files (an agent shutdown); `close()` deletes them (cleanup-test, a changed point).
 * - The failover view (failover-ops.ts) is this same view: a failed-over VM runs on it until
 *   commit, which copies `changedRuns()` onto the disks through the journal.
 *
 * What the caller must guarantee: while a view is open its point must stay retained — pin it
 * (ReplicaStore.pin: prune skips it; revert or commit past it, rebase and resync are refused).
 * Otherwise store.read() refuses the point and the test VM gets EIO.
 */
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { SecondsiteError, badInput } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { BlockDevice } from '../nbd/block-device.ts';
import { serveExport, type NbdExport } from '../nbd/server.ts';
import type { ReplicaStore } from '../recovery/types.ts';
import { RawDisk, createSparseImage } from '../vm/raw-disk.ts';
import { OverlayBlocks, type BlockRun } from './overlay-blocks.ts';

/** Overlay granularity: the guest's page and filesystem block size. */
export const OVERLAY_BLOCK = 4096;
/** The zeros of a partial edge block (never more than one block). */
const ZEROS = Buffer.alloc(OVERLAY_BLOCK);

export type PointSource = Pick<ReplicaStore, 'read' | 'points'>;

export interface TestViewOptions {
  readonly store: PointSource;
  readonly pointId: string;
  readonly diskSizes: readonly number[];
  readonly overlayDir: string;
  /** Reopen the overlay files (and maps) a kept or crashed view left. @default false */
  readonly resume?: boolean;
}

export interface TestView {
  readonly pointId: string;
  readonly disks: readonly TestViewDisk[];
  /** Closes every disk and deletes the overlay files (keeps them, flushed, with keepOverlay). */
  close(opts?: { keepOverlay?: boolean }): Promise<void>;
}

/** One map record: u8 state (1 data, 2 zero), u64 first block, u64 last block. */
const MAP_RECORD = 17;

export function overlayPaths(dir: string, disk: number): { data: string; map: string } {
  return { data: join(dir, `overlay-${disk}.raw`), map: join(dir, `overlay-${disk}.map`) };
}

export class TestViewDisk implements BlockDevice {
  readonly preferredBlockSize = OVERLAY_BLOCK;
  private readonly blocks = new OverlayBlocks(OVERLAY_BLOCK);
  private closed = false;
  /** Marks not yet in the map file. */
  private pending: BlockRun[] = [];
  private readonly mapFd: number;

  constructor(
    private readonly store: PointSource,
    private readonly pointId: string,
    private readonly disk: number,
    readonly size: number,
    private readonly overlay: RawDisk,
    readonly overlayPath: string,
    readonly mapPath: string,
  ) {
    if (existsSync(mapPath)) this.replayMap(readFileSync(mapPath));
    this.mapFd = openSync(mapPath, 'a', 0o600);
  }

  /** The blocks the guest changed (data or zeros), in order: what a commit copies. */
  changedRuns(): BlockRun[] {
    return this.blocks.changedRuns();
  }

  /** Bytes of the overlay file itself (only meaningful for 'data' blocks). */
  readOverlay(offset: number, length: number): Buffer {
    this.assertOpen();
    return this.overlay.readSync(offset, length);
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.assertOpen();
    return this.readSync(offset, length, into);
  }

  async write(offset: number, data: Buffer, fua: boolean): Promise<void> {
    this.assertOpen();
    this.writeSync(offset, data);
    if (fua) this.syncAll();
  }

  async trim(offset: number, length: number, fua: boolean): Promise<void> {
    this.assertOpen();
    this.zeroSync(offset, length);
    if (fua) this.syncAll();
  }

  async writeZeroes(offset: number, length: number, fua: boolean): Promise<void> {
    await this.trim(offset, length, fua);
  }

  async flush(): Promise<void> {
    this.assertOpen();
    this.syncAll();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.syncAll();
    this.closed = true;
    closeSync(this.mapFd);
    await this.overlay.close();
  }

  /** Overlay data first, then the map that points at it. */
  private syncAll(): void {
    this.overlay.syncSync();
    if (this.pending.length === 0) return;
    const buf = Buffer.alloc(this.pending.length * MAP_RECORD);
    this.pending.forEach((r, i) => {
      const at = i * MAP_RECORD;
      buf.writeUInt8(r.state === 'data' ? 1 : 2, at);
      buf.writeBigUInt64LE(BigInt(r.first), at + 1);
      buf.writeBigUInt64LE(BigInt(r.last), at + 9);
    });
    writeSync(this.mapFd, buf);
    fdatasyncSync(this.mapFd);
    this.pending = [];
  }

  private replayMap(buf: Buffer): void {
    for (let at = 0; at + MAP_RECORD <= buf.length; at += MAP_RECORD) {
      const state = buf.readUInt8(at);
      const first = Number(buf.readBigUInt64LE(at + 1));
      const last = Number(buf.readBigUInt64LE(at + 9));
      for (let b = first; b <= last; b++) {
        if (state === 1) this.blocks.markData(b);
        else this.blocks.markZero(b);
      }
    }
  }

  private note(first: number, last: number, state: 'data' | 'zero'): void {
    const prev = this.pending.at(-1);
    if (prev && prev.state === state && prev.last + 1 === first) {
      this.pending[this.pending.length - 1] = { ...prev, last };
    } else this.pending.push({ first, last, state });
  }

  /** Bytes of block bitmap in memory (grows only with what the test VM writes). */
  get mapBytes(): number {
    return this.blocks.bitmapBytes;
  }

  private readSync(offset: number, length: number, into?: Buffer): Buffer {
    const out = into ?? Buffer.allocUnsafe(length);
    if (length === 0) return out;
    const B = OVERLAY_BLOCK;
    const end = offset + length;
    for (const run of this.blocks.runs(Math.floor(offset / B), Math.floor((end - 1) / B))) {
      const from = Math.max(offset, run.first * B);
      const to = Math.min(end, (run.last + 1) * B);
      const part = out.subarray(from - offset, to - offset);
      if (run.state === 'data') this.overlay.readSync(from, to - from, part);
      else if (run.state === 'zero') part.fill(0);
      else this.store.read(this.disk, from, to - from, this.pointId).copy(part);
    }
    return out;
  }

  /** Bytes [start, end) of a block are covered: a partial block is first copied up whole. */
  private copyUpUnlessCovered(block: number, start: number, end: number): void {
    const blockStart = block * OVERLAY_BLOCK;
    const blockEnd = Math.min(blockStart + OVERLAY_BLOCK, this.size);
    if (start <= blockStart && end >= blockEnd) return;
    if (this.blocks.state(block) === 'data') return;
    this.overlay.writeSync(blockStart, this.readSync(blockStart, blockEnd - blockStart));
  }

  private writeSync(offset: number, data: Buffer): void {
    if (data.length === 0) return;
    const end = offset + data.length;
    const first = Math.floor(offset / OVERLAY_BLOCK);
    const last = Math.floor((end - 1) / OVERLAY_BLOCK);
    this.copyUpUnlessCovered(first, offset, end);
    if (last !== first) this.copyUpUnlessCovered(last, offset, end);
    this.overlay.writeSync(offset, data);
    for (let b = first; b <= last; b++) this.blocks.markData(b);
    this.note(first, last, 'data');
  }

  /** Whole blocks become zero blocks (no I/O); partial edge blocks are written with zeros. */
  private zeroSync(offset: number, length: number): void {
    if (length === 0) return;
    const B = OVERLAY_BLOCK;
    const end = offset + length;
    const wholeFirst = Math.ceil(offset / B);
    // The disk's last block may be short: reaching the end of the disk covers it.
    const wholeEnd = end === this.size ? Math.ceil(end / B) : Math.floor(end / B);
    if (wholeFirst >= wholeEnd) {
      // No whole block inside: under two blocks of zeros through the write path.
      this.writeSync(offset, Buffer.alloc(length));
      return;
    }
    if (offset < wholeFirst * B) this.writeSync(offset, ZEROS.subarray(0, wholeFirst * B - offset));
    for (let b = wholeFirst; b < wholeEnd; b++) this.blocks.markZero(b);
    this.note(wholeFirst, wholeEnd - 1, 'zero');
    if (end > wholeEnd * B) this.writeSync(wholeEnd * B, ZEROS.subarray(0, end - wholeEnd * B));
  }

  private assertOpen(): void {
    if (this.closed) throw new SecondsiteError('SS_CONFLICT', 'the test view disk is closed');
  }
}

/** Opens a view of `pointId` (O(1): sparse overlay files, empty maps). */
export async function openTestView(opts: TestViewOptions): Promise<TestView> {
  if (!opts.store.points().some((p) => p.id === opts.pointId)) {
    throw new SecondsiteError('SS_NOT_FOUND', `no retained recovery point ${opts.pointId}`, {
      pointId: opts.pointId,
    });
  }
  if (opts.diskSizes.length === 0) throw badInput('diskSizes', 'a VM has at least one disk');
  for (const size of opts.diskSizes) {
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw badInput('diskSizes', `${size} is not a disk size in bytes`);
    }
  }
  mkdirSync(opts.overlayDir, { recursive: true, mode: 0o700 });
  const disks: TestViewDisk[] = [];
  const remove = (): void => {
    opts.diskSizes.forEach((_, i) => {
      const paths = overlayPaths(opts.overlayDir, i);
      rmSync(paths.data, { force: true });
      rmSync(paths.map, { force: true });
    });
  };
  try {
    opts.diskSizes.forEach((size, i) => {
      const { data, map } = overlayPaths(opts.overlayDir, i);
      if (!opts.resume || !existsSync(data)) {
        createSparseImage(data, size); // refuses an overlay in use (O_EXCL)
        rmSync(map, { force: true }); // a new overlay never inherits a stale map
      }
      disks.push(
        new TestViewDisk(opts.store, opts.pointId, i, size, RawDisk.open(data), data, map),
      );
    });
  } catch (e) {
    for (const d of disks) await d.close();
    if (!opts.resume) {
      for (const d of disks) rmSync(d.overlayPath, { force: true });
      for (const d of disks) rmSync(d.mapPath, { force: true });
    }
    throw e instanceof SecondsiteError
      ? e
      : new SecondsiteError('SS_IO', `cannot create the test overlay: ${(e as Error).message}`, {
          overlayDir: opts.overlayDir,
        });
  }
  return {
    pointId: opts.pointId,
    disks,
    async close(o = {}) {
      for (const d of disks) await d.close();
      if (!o.keepOverlay) remove();
    },
  };
}

/** One NBD export per disk of the view, with the host's NBD server. */
export async function serveTestView(
  view: TestView,
  opts: {
    exportName: (index: number) => string;
    socketPath: (index: number) => string;
    log: Logger;
  },
): Promise<NbdExport[]> {
  const exports: NbdExport[] = [];
  try {
    for (const [i, device] of view.disks.entries()) {
      exports.push(
        await serveExport({
          socketPath: opts.socketPath(i),
          exportName: opts.exportName(i),
          device,
          log: opts.log,
          description: `test view of point ${view.pointId}`,
        }),
      );
    }
  } catch (e) {
    for (const x of exports) await x.close();
    throw e;
  }
  return exports;
}
