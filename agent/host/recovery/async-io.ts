/**
 * I/O of the apply path (apply steps 1 and 3) that keeps the event loop turning. The replica
 * host's loop must stay free while a large segment is written and made durable: it answers
 * the sender's HTTP/2 keepalive pings, and a loop blocked for longer than the keepalive
 * timeout (grpc-options.ts) makes the sender drop a healthy connection — with synchronous
 * writes and fdatasyncs, a 750 MB segment froze the loop for seconds. So: writes go to the
 * page cache synchronously in bounded slices with turns of the loop between them, and every
 * fdatasync / folder fsync, the slow part, runs on the thread pool.
 *
 * Every call resolves only when the kernel has taken the bytes (or, for the syncs, when they
 * are on stable storage), so the apply protocol's order is unchanged: each step is awaited
 * before the next begins.
 */
import { fdatasync, writeSync } from 'node:fs';
export { fsyncDirAsync } from '../journal/journal-dir.ts';
import type { Extent } from '../journal/types.ts';
import type { RawDisk } from '../vm/raw-disk.ts';

/**
 * Bytes per write call. LAB.md / undo-file.ts: large calls pay the kernel's per-call
 * dirty-page accounting; 1 MiB slices measured fastest for new files.
 */
const WRITE_SLICE = 1 << 20;

const ZEROS = Buffer.alloc(WRITE_SLICE);

/**
 * Writes all of `data` at `position`, synchronously in WRITE_SLICE calls (page-cache speed;
 * callers yield between batches and leave the fdatasync to `datasync`).
 */
export function pwriteFull(fd: number, data: Buffer, position: number): void {
  let done = 0;
  while (done < data.length) {
    const n = Math.min(WRITE_SLICE, data.length - done);
    done += writeSync(fd, data, done, n, position + done);
  }
}

/** fdatasync on the thread pool. */
export function datasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve())));
}

/** Writes onto the replica disks without holding the event loop for long. */
export interface ExtentWriter {
  /** Writes every extent (zeros for data === null), then fdatasyncs the disks it touched. */
  writeDurably(extents: readonly Extent[]): Promise<void>;
  close(): void;
}

/**
 * Bytes written synchronously between two yields to the event loop. Writes into the page
 * cache are fast (~20 µs per 64 KiB) and a thread-pool round trip per write costs more than
 * the write itself on a loaded host (measured: delta-1pct got slower with every write on the
 * pool), so writes stay synchronous in slices of this size, and only the fdatasync, which
 * takes long, runs on the pool.
 */
const YIELD_BYTES = 8 << 20;

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Writes every extent (zeros for data === null) in synchronous slices with a turn of the
 * event loop between them, then fdatasyncs the disks it touched on the thread pool.
 */
export function extentWriter(disks: readonly RawDisk[]): ExtentWriter {
  return {
    async writeDurably(extents) {
      const touched = new Set<number>();
      let since = 0;
      for (const e of extents) {
        touched.add(e.disk);
        const d = disks[e.disk]!;
        for (let at = 0; at < e.length; at += WRITE_SLICE) {
          if (since >= YIELD_BYTES) {
            await turn();
            since = 0;
          }
          const n = Math.min(WRITE_SLICE, e.length - at);
          if (e.data === null) d.writeSync(e.offset + at, ZEROS.subarray(0, n));
          else d.writeSync(e.offset + at, e.data.subarray(at, at + n));
          since += n;
        }
      }
      await Promise.all([...touched].map((d) => disks[d]!.syncAsync()));
    },
    close: () => undefined,
  };
}
