/**
 * Reading the replica's old contents for undo data (apply step 1). This is the random read
 * that limits a naive receiver (LAB.md): measured here, 164 random 64 KiB reads of an uncached
 * 1 GiB image take 60–110 ms one at a time and 17–29 ms with 16 in flight on the thread pool.
 * So when the image paths are known the reads are issued in parallel on read-only descriptors
 * of their own; otherwise they fall back to the disks' synchronous calls.
 */
import { closeSync, openSync, read, constants } from 'node:fs';
import type { RawDisk } from '../vm/raw-disk.ts';

export interface ReadRequest {
  readonly disk: number;
  readonly offset: number;
  /** Filled completely; its length is the read length. */
  readonly into: Buffer;
}

export interface OldContentsReader {
  readAll(requests: readonly ReadRequest[]): Promise<void>;
  close(): void;
}

/** Reads in flight at once; the thread pool (UV_THREADPOOL_SIZE, default 4) bounds it too. */
const IN_FLIGHT = 16;

export function syncReader(disks: readonly RawDisk[]): OldContentsReader {
  return {
    readAll: async (requests) => {
      for (const r of requests) disks[r.disk]!.readSync(r.offset, r.into.length, r.into);
    },
    close: () => undefined,
  };
}

/** Parallel positional reads on read-only descriptors of the image files at `paths`. */
export function parallelReader(paths: readonly string[]): OldContentsReader {
  const fds = paths.map((p) => openSync(p, constants.O_RDONLY));
  return {
    readAll: async (requests) => {
      let next = 0;
      let stop = false;
      const worker = async (): Promise<void> => {
        while (next < requests.length && !stop) {
          const r = requests[next++]!;
          await readFully(fds[r.disk]!, r.into, r.offset).catch((e: unknown) => {
            stop = true;
            throw e;
          });
        }
      };
      // allSettled: on an error no read may still be landing in the reused batch buffer.
      const workers = Array.from({ length: Math.min(IN_FLIGHT, requests.length) }, worker);
      const failed = (await Promise.allSettled(workers)).find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
    close: () => {
      for (const fd of fds) closeSync(fd);
    },
  };
}

async function readFully(fd: number, into: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const n = await new Promise<number>((resolve, reject) => {
      read(fd, into, done, into.length - done, position + done, (err, bytes) =>
        err ? reject(err) : resolve(bytes),
      );
    });
    if (n === 0) {
      into.fill(0, done); // past the end of a short image reads as zeros, like RawDisk
      return;
    }
    done += n;
  }
}
