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
 *   VM's own (created if missing; overlay-<i>.raw must not exist yet).
 * - Reads prefer overlay blocks (4 KiB): a block the test VM wrote reads from the overlay, a
 *   block it discarded or zeroed reads as zeros, any other from the point via store.read(). A
 *   write that covers part of a block first copies the block's current bytes into the overlay
 *   (copy-up), so blocks are always whole in the overlay.
 * - FLUSH and FUA fdatasync the overlay file. The block map lives in memory only: the test
 *   VM's writes last as long as the view (a host-agent restart discards them, as cleanup-test
 *   would). Discards and zero-writes of whole blocks cost no overlay space.
 *
 * What the caller must guarantee (the replica store has no pin yet): while a view is open its
 * point must stay retained — the host must not prune it, revert or commit past it, rebase or
 * resync the store. Otherwise store.read() refuses the point and the test VM gets EIO.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SecondsiteError, badInput } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { BlockDevice } from '../nbd/block-device.ts';
import { serveExport, type NbdExport } from '../nbd/server.ts';
import type { ReplicaStore } from '../recovery/types.ts';
import { RawDisk, createSparseImage } from '../vm/raw-disk.ts';
import { OverlayBlocks } from './overlay-blocks.ts';

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
}

export interface TestView {
  readonly pointId: string;
  readonly disks: readonly TestViewDisk[];
  /** Closes every disk and deletes the overlay files. */
  close(): Promise<void>;
}

export class TestViewDisk implements BlockDevice {
  readonly preferredBlockSize = OVERLAY_BLOCK;
  private readonly blocks = new OverlayBlocks(OVERLAY_BLOCK);
  private closed = false;

  constructor(
    private readonly store: PointSource,
    private readonly pointId: string,
    private readonly disk: number,
    readonly size: number,
    private readonly overlay: RawDisk,
    readonly overlayPath: string,
  ) {}

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.assertOpen();
    return this.readSync(offset, length, into);
  }

  async write(offset: number, data: Buffer, fua: boolean): Promise<void> {
    this.assertOpen();
    this.writeSync(offset, data);
    if (fua) this.overlay.syncSync();
  }

  async trim(offset: number, length: number, fua: boolean): Promise<void> {
    this.assertOpen();
    this.zeroSync(offset, length);
    if (fua) this.overlay.syncSync();
  }

  async writeZeroes(offset: number, length: number, fua: boolean): Promise<void> {
    await this.trim(offset, length, fua);
  }

  async flush(): Promise<void> {
    this.assertOpen();
    this.overlay.syncSync();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.overlay.close();
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
  try {
    opts.diskSizes.forEach((size, i) => {
      const path = join(opts.overlayDir, `overlay-${i}.raw`);
      createSparseImage(path, size);
      disks.push(new TestViewDisk(opts.store, opts.pointId, i, size, RawDisk.open(path), path));
    });
  } catch (e) {
    for (const d of disks) await d.close();
    for (const d of disks) rmSync(d.overlayPath, { force: true });
    throw e instanceof SecondsiteError
      ? e
      : new SecondsiteError('SS_IO', `cannot create the test overlay: ${(e as Error).message}`, {
          overlayDir: opts.overlayDir,
        });
  }
  return {
    pointId: opts.pointId,
    disks,
    async close() {
      for (const d of disks) await d.close();
      for (const d of disks) rmSync(d.overlayPath, { force: true });
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
