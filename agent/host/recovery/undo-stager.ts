/**
 * Apply step 1 done ahead, while the segment is still arriving: the undo file of segment `seq`
 * built chunk by chunk from the extents received so far (old contents read from the replica
 * disks, written with checksums), so that once the segment is verified only the file's table,
 * header and fdatasync remain. For a large segment this hides the random reads of undo data
 * (LAB.md: what limits a naive receiver) behind the transfer.
 *
 * It writes the very file `writeUndoFile` would (same runs, same layout: a test compares them
 * byte for byte) and relies on nothing the apply protocol does not: reading the disks and
 * writing an undo file change no replica state, and an undo file without the intent that
 * follows it is an orphan, deleted at open. Whether the old contents read here are still the
 * disks' contents when the segment applies is the store's to decide (replica-store.ts drops a
 * staging when any mutation ran in between).
 *
 * Runs are merged and cut exactly as `planUndoRuns` does; a run is written once it can no
 * longer grow (the next extent does not continue it, or it reached MAX_RUN_BYTES), in batches
 * of up to the batch buffer's size.
 *
 * A live segment (FEATURE_LIVE_SEGMENTS) adds the ranges its writes touch for the first time,
 * in write order: never overlapping, but not sorted. Their data stays in arrival order and the
 * table, sorted by (disk, offset), says where each run's data is (undo-format.ts version 2).
 * Such a staging lasts a whole cycle, so it can also make its data durable as it goes
 * (`syncEveryBytes`), leaving the apply only the table and a short fdatasync.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import type { Extent } from '../journal/types.ts';
import { datasync, fsyncDirAsync, pwriteFull } from './async-io.ts';
import type { OldContentsReader, ReadRequest } from './old-contents-reader.ts';
import { removeFile } from './open-recovery.ts';
import type { UndoFile } from './undo-file.ts';
import { undoPath } from './undo-file.ts';
import { HEADER_BYTES, encodeHeader, encodeTable, undoFileBytes } from './undo-format.ts';
import { MAX_RUN_BYTES, allocRuns, extendRuns, type RunSpan } from './undo-runs.ts';

type Run = [disk: number, offset: number, length: number, crc: number, fileOffset: number];

export class UndoStager {
  readonly path: string;
  private fd: number | undefined;
  /** The run still able to grow. */
  private open: RunSpan | undefined;
  /** Runs that can no longer grow, not yet written. */
  private pending: RunSpan[] = [];
  private pendingBytes = 0;
  /** Written runs, in file order. */
  private readonly done: Run[] = [];
  /** Where the next run's data goes in the file. */
  private filePos = HEADER_BYTES;
  /** An add failed: the file is incomplete and must not be finished (the store drops it). */
  failed = false;
  /** Bytes written since the last background fdatasync began, and that fdatasync. */
  private unsynced = 0;
  private syncing: Promise<void> | undefined;
  /** The folder was fsynced after the file was created (by a background sync). */
  private dirSynced = false;
  private syncRunning = false;
  /** finish or abort began: no further background sync may start. */
  private ending = false;

  constructor(
    private readonly o: {
      readonly dir: string;
      readonly seq: number;
      readonly diskCount: number;
      readonly reader: OldContentsReader;
      /** Reused batch memory, at least MAX_RUN_BYTES; owned by this stager until it ends. */
      readonly buffer: Buffer;
      /** fdatasync in the background after this many bytes written since the last one. */
      readonly syncEveryBytes?: number;
    },
  ) {
    this.path = undoPath(o.dir, o.seq);
    this.fd = openSync(
      this.path,
      constants.O_CREAT | constants.O_TRUNC | constants.O_WRONLY,
      0o600,
    );
  }

  get seq(): number {
    return this.o.seq;
  }

  /** Takes the next extents of the segment (in order); writes the runs they complete. */
  async add(extents: readonly Extent[]): Promise<void> {
    try {
      await this.addUnsafe(extents);
    } catch (e) {
      this.failed = true;
      throw e;
    }
  }

  private async addUnsafe(extents: readonly Extent[]): Promise<void> {
    for (const e of extents) {
      extendRuns(this.open, e, MAX_RUN_BYTES, (run) => {
        this.close();
        this.open = run;
      });
    }
    // A live staging writes what it can at once: its chunks trickle in over a whole cycle,
    // and whatever is left at the end is what the apply waits for.
    const live = this.o.syncEveryBytes !== undefined;
    if (live ? this.pending.length > 0 : this.pendingBytes >= this.o.buffer.length - MAX_RUN_BYTES)
      await this.writePending();
  }

  /** Writes what is left, the table and the header, and makes the file durable. */
  async finish(): Promise<UndoFile> {
    this.close();
    await this.writePending();
    this.ending = true;
    await this.syncing;
    const fd = this.descriptor();
    const runs = allocRuns(this.done.length);
    // Sorted by (disk, offset); already so, and then unchanged, unless the segment is live.
    const done = this.done.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    done.forEach(([disk, offset, length, crc, fileOffset], i) => {
      runs.disk[i] = disk;
      runs.offset[i] = offset;
      runs.length[i] = length;
      runs.fileOffset[i] = fileOffset;
      runs.crc[i] = crc;
    });
    const at = this.filePos;
    const dataBytes = at - HEADER_BYTES;
    const head = Buffer.alloc(HEADER_BYTES);
    encodeHeader(
      { seq: this.o.seq, runCount: runs.count, dataBytes, diskCount: this.o.diskCount },
      head,
    );
    try {
      pwriteFull(fd, encodeTable(runs), at);
      pwriteFull(fd, head, 0);
      await datasync(fd);
    } finally {
      closeSync(fd);
      this.fd = undefined;
    }
    if (!this.dirSynced) await fsyncDirAsync(this.o.dir);
    return {
      seq: this.o.seq,
      path: this.path,
      bytes: undoFileBytes({ runCount: runs.count, dataBytes }),
      runs,
    };
  }

  /** Gives the staging up: the partial file goes (it was never an undo file of any point). */
  abort(): void {
    // A background fdatasync may still hold the descriptor: close it once that ends.
    this.ending = true;
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) {
      const close = (): void => closeSync(fd);
      if (this.syncing) void this.syncing.then(close, close);
      else close();
    }
    removeFile(this.path);
  }

  private close(): void {
    if (!this.open) return;
    this.pending.push(this.open);
    this.pendingBytes += this.open[2];
    this.open = undefined;
  }

  /** Reads the pending runs' old contents in batches and appends them to the file. */
  private async writePending(): Promise<void> {
    const fd = this.descriptor();
    const buf = this.o.buffer;
    let i = 0;
    while (i < this.pending.length) {
      const batch: ReadRequest[] = [];
      const spans: RunSpan[] = [];
      let fill = 0;
      for (; i < this.pending.length && fill + this.pending[i]![2] <= buf.length; i++) {
        const s = this.pending[i]!;
        batch.push({ disk: s[0], offset: s[1], into: buf.subarray(fill, fill + s[2]) });
        spans.push(s);
        fill += s[2];
      }
      await this.o.reader.readAll(batch);
      let at = this.filePos;
      batch.forEach((r, k) => {
        const [disk, offset, length] = spans[k]!;
        this.done.push([disk, offset, length, crc32(r.into), at]);
        at += length;
      });
      pwriteFull(fd, buf.subarray(0, fill), this.filePos);
      this.filePos += fill;
      this.unsynced += fill;
    }
    this.pending = [];
    this.pendingBytes = 0;
    const every = this.o.syncEveryBytes;
    if (every !== undefined && this.unsynced >= every && !this.syncRunning)
      this.syncInBackground(fd);
  }

  /**
   * fdatasyncs the file on the thread pool, again and again while `syncEveryBytes` more were
   * written meanwhile, never awaited by `add` (the receive path must not wait for the disk).
   * The first also makes the file's name durable, so the finish need not fsync the folder.
   */
  private syncInBackground(fd: number): void {
    const every = this.o.syncEveryBytes ?? Infinity;
    this.syncRunning = true;
    this.syncing = (async () => {
      try {
        while (!this.ending && this.unsynced >= every) {
          this.unsynced = 0;
          if (this.dirSynced) await datasync(fd);
          else {
            this.dirSynced = true;
            await Promise.all([datasync(fd), fsyncDirAsync(this.o.dir)]);
          }
        }
      } finally {
        this.syncRunning = false;
      }
    })();
    this.syncing.catch(() => undefined); // finish() reports it
  }

  private descriptor(): number {
    if (this.fd === undefined) throw new Error(`undo staging of segment ${this.o.seq} has ended`);
    return this.fd;
  }
}
