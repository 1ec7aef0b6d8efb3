/**
 * Initial replication, replica side: writes the copy's chunks onto the replica disks, keeps a
 * durable watermark (sync-state-file.ts) so a broken copy resumes where it left off, and at the
 * end rebases the recovery store to the copy's baseSeq (initial-copy-source.ts explains why
 * segment baseSeq + 1 onwards then make the replica exact). The store advertises no point
 * until that first segment is applied.
 *
 * Zero ranges: when the image paths are given, a new copy first truncates the images to holes,
 * so zero ranges the copy has not reached before need no write at all (30% of a typical disk).
 * Past the durable watermark, up to twice `flushEveryBytes` (plus a chunk) may have been
 * written by an attempt that died before its watermark; zero ranges there are written out.
 *
 * Flushes are pipelined: at every `flushEveryBytes` the disks are fdatasynced on the thread
 * pool while the next chunks are written, and the watermark moves to where that flush began
 * only once it completed. A new flush waits for the previous one, so writes run at most one
 * flush interval ahead of a flush in flight (the window above). Before, each flush was a
 * synchronous fdatasync that stopped the stream (and the event loop) for its whole duration.
 */
import { truncateSync } from 'node:fs';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { ReplicaStore } from '../recovery/types.ts';
import type { RawDisk } from '../vm/raw-disk.ts';
import {
  MAX_CHUNK_BYTES,
  bytesBefore,
  totalBytes,
  wholeDisks,
  type GridCursor,
} from './chunk-grid.ts';
import {
  readWatermark,
  removeWatermark,
  writeWatermark,
  type CopyWatermark,
} from './sync-state-file.ts';
import type { Extent, SyncProgress } from './types.ts';

export interface InitialCopyTargetOptions {
  /** Where the watermark lives (the VM's replica folder). */
  readonly dir: string;
  readonly disks: readonly RawDisk[];
  /** The images of `disks`, same order: lets a new copy start from holes. @default undefined */
  readonly diskPaths?: readonly string[];
  readonly store: Pick<ReplicaStore, 'rebase'>;
  /** Bytes between fsync + watermark. @default 64 MiB */
  readonly flushEveryBytes?: number;
  readonly log: Logger;
}

export interface CopyBegin {
  readonly copyId: string;
  readonly baseSeq: number;
  readonly diskSizes: readonly number[];
}

const DEFAULT_FLUSH = 64 << 20;
/** Bytes of data writes in flight on the thread pool at most. */
const WRITE_WINDOW = 16 << 20;

export class InitialCopyTarget {
  private mark: CopyWatermark | undefined;
  /** Where the next chunk must start; ahead of the durable watermark between flushes. */
  private next: GridCursor = { disk: 0, offset: 0 };
  private unflushed = 0;
  /**
   * Data writes issued on the thread pool and not yet done (they never reject; a failure is
   * kept in `flushError`). A flush waits for all of them before its fdatasync, so the
   * watermark never covers a write still in flight; at most WRITE_WINDOW bytes are.
   */
  private readonly writing = new Set<Promise<void>>();
  private writingBytes = 0;
  /** The flush in flight (never rejects; a failure is kept in `flushError`). */
  private flushing: Promise<void> = Promise.resolve();
  private flushError: unknown;
  /** Zero ranges starting at or past this cursor need no write (see the file comment). */
  private holesFrom: GridCursor | undefined;
  private readonly flushEvery: number;

  constructor(private readonly o: InitialCopyTargetOptions) {
    this.flushEvery = o.flushEveryBytes ?? DEFAULT_FLUSH;
    this.mark = readWatermark(o.dir);
  }

  /** The copy in progress on this replica, if any (for the decision table and resuming). */
  pending(): CopyWatermark | undefined {
    return this.mark;
  }

  /** CopyStart → CopyProgress: where the source must begin (0/0 for a new copy id). */
  begin(b: CopyBegin): GridCursor {
    const sizes = this.o.disks.map((d) => d.size);
    if (JSON.stringify(sizes) !== JSON.stringify(b.diskSizes)) {
      throw new SecondsiteError('SS_CONFLICT', 'replica disk sizes differ from the source', {
        replica: sizes,
        source: b.diskSizes,
      });
    }
    const m = this.mark;
    if (m && m.copyId === b.copyId && m.baseSeq === b.baseSeq) {
      this.next = m.cursor;
      // The dead attempt wrote at most flushEvery + one chunk past its watermark.
      const window = 2 * this.flushEvery + MAX_CHUNK_BYTES;
      this.holesFrom = m.cleared ? advance(m.cursor, window, sizes) : undefined;
      this.o.log.info({ copyId: b.copyId, cursor: m.cursor }, 'initial copy: resuming');
      return m.cursor;
    }
    const cleared = this.clearImages(sizes);
    this.next = { disk: 0, offset: 0 };
    this.holesFrom = cleared ? this.next : undefined;
    this.persist({ version: 1, ...b, diskSizes: [...b.diskSizes], cursor: this.next, cleared });
    this.o.log.info({ copyId: b.copyId, baseSeq: b.baseSeq, cleared }, 'initial copy: new');
    return this.next;
  }

  /**
   * Writes chunks, which must follow on from the last one; every flushEveryBytes starts a
   * flush (see the file comment). Resolves once the chunks are written and at most one flush
   * is in flight; rejects with a failed flush's error.
   */
  async write(chunks: readonly Extent[]): Promise<void> {
    const m = this.expectMark();
    this.throwFlushError();
    for (const c of chunks) {
      this.checkNext(c, m.diskSizes);
      const disk = this.o.disks[c.disk]!;
      if (c.data !== null) await this.issueWrite(disk, c.offset, c.data);
      else if (!this.holesFrom || before(c, this.holesFrom)) disk.zeroSync(c.offset, c.length);
      this.next = { disk: c.disk, offset: c.offset + c.length };
      this.unflushed += c.length;
      if (this.unflushed >= this.flushEvery) {
        await this.flushing; // at most one flush in flight
        this.throwFlushError();
        this.startFlush();
      }
    }
  }

  /** Starts a data write on the thread pool; waits while WRITE_WINDOW bytes are in flight. */
  private async issueWrite(disk: RawDisk, offset: number, data: Buffer): Promise<void> {
    while (this.writingBytes + data.length > WRITE_WINDOW && this.writing.size > 0) {
      await Promise.race(this.writing);
    }
    this.throwFlushError();
    this.writingBytes += data.length;
    const w: Promise<void> = disk
      .writeAsync(offset, data)
      .catch((e: unknown) => {
        this.flushError ??= e;
      })
      .finally(() => {
        this.writing.delete(w);
        this.writingBytes -= data.length;
      });
    this.writing.add(w);
  }

  /** Makes everything written durable and moves the watermark there. */
  async flush(): Promise<void> {
    this.expectMark();
    await this.flushing;
    this.throwFlushError();
    this.startFlush();
    await this.flushing;
    this.throwFlushError();
  }

  /**
   * fdatasyncs the disks (covering every write issued so far) and then persists the watermark
   * at the cursor of this moment.
   */
  private startFlush(): void {
    const m = this.expectMark();
    const at = this.next;
    this.unflushed = 0;
    const issued = [...this.writing];
    this.flushing = (async () => {
      await Promise.all(issued); // every write up to `at` has reached the page cache
      if (this.flushError !== undefined) return;
      await Promise.all(this.o.disks.map((d) => d.syncAsync()));
      this.persist({ ...m, cursor: at });
    })().catch((e: unknown) => {
      this.flushError ??= e;
    });
  }

  private throwFlushError(): void {
    if (this.flushError !== undefined) throw this.flushError;
  }

  /** Durable progress (CopyProgress). */
  progress(): SyncProgress {
    const m = this.mark;
    if (!m) return { bytesDone: 0, bytesTotal: 0 };
    const all = wholeDisks(m.diskSizes);
    return { bytesDone: bytesBefore(all, m.cursor), bytesTotal: totalBytes(all) };
  }

  /**
   * CopyEnd: every byte arrived; fsync, rebase the store to baseSeq (it then expects segment
   * baseSeq + 1), forget the watermark. Idempotent after a crash between its steps.
   */
  async finish(): Promise<{ baseSeq: number }> {
    const m = this.expectMark();
    const all = wholeDisks(m.diskSizes);
    await this.flush();
    if (bytesBefore(all, this.next) !== totalBytes(all)) {
      throw new SecondsiteError('SS_PROTOCOL', 'initial copy ended before the last chunk', {
        cursor: this.next,
      });
    }
    await this.o.store.rebase(m.baseSeq);
    removeWatermark(this.o.dir);
    this.mark = undefined;
    this.o.log.info(
      { baseSeq: m.baseSeq },
      'initial copy: done; the store expects the next segment',
    );
    return { baseSeq: m.baseSeq };
  }

  private clearImages(sizes: readonly number[]): boolean {
    const paths = this.o.diskPaths;
    if (!paths) return false;
    paths.forEach((p, i) => {
      truncateSync(p, 0);
      truncateSync(p, sizes[i]!);
    });
    for (const d of this.o.disks) d.syncSync();
    return true;
  }

  private checkNext(c: Extent, sizes: readonly number[]): void {
    let want = this.next;
    while (want.disk < sizes.length && want.offset >= sizes[want.disk]!)
      want = { disk: want.disk + 1, offset: 0 };
    const size = sizes[c.disk];
    const ok =
      c.disk === want.disk &&
      c.offset === want.offset &&
      size !== undefined &&
      c.length > 0 &&
      c.offset + c.length <= size &&
      (c.data === null || c.data.length === c.length);
    if (!ok) {
      throw new SecondsiteError('SS_PROTOCOL', 'initial copy chunk out of order or malformed', {
        want,
        got: { disk: c.disk, offset: c.offset, length: c.length },
      });
    }
  }

  private persist(m: CopyWatermark): void {
    writeWatermark(this.o.dir, m);
    this.mark = m;
  }

  private expectMark(): CopyWatermark {
    if (!this.mark) throw new SecondsiteError('SS_CONFLICT', 'no initial copy begun', {});
    return this.mark;
  }
}

function before(c: Extent, at: GridCursor): boolean {
  return c.disk < at.disk || (c.disk === at.disk && c.offset < at.offset);
}

/** The cursor `bytes` further on in copy order. */
function advance(c: GridCursor, bytes: number, sizes: readonly number[]): GridCursor {
  let { disk, offset } = c;
  let left = bytes;
  while (disk < sizes.length) {
    const room = sizes[disk]! - offset;
    if (left < room) return { disk, offset: offset + left };
    left -= room;
    disk++;
    offset = 0;
  }
  return { disk, offset: 0 };
}
