/**
 * Positional writes and fdatasync on the thread pool, for the apply path (apply steps 1 and
 * 3). The replica host's event loop must stay free while a large segment is written and made
 * durable: it answers the sender's HTTP/2 keepalive pings, and a loop blocked for longer than
 * the keepalive timeout (grpc-options.ts) makes the sender drop a healthy connection —
 * measured with synchronous calls: a 750 MB segment froze the loop for seconds.
 *
 * Every call here resolves only when the kernel has taken the bytes (or, for `datasync`, when
 * they are on stable storage), so the apply protocol's order is unchanged: each step is awaited
 * before the next begins.
 */
import { closeSync, fdatasync, openSync, write, constants } from 'node:fs';
export { fsyncDirAsync } from '../journal/journal-dir.ts';
import type { Extent } from '../journal/types.ts';
import type { RawDisk } from '../vm/raw-disk.ts';

/**
 * Bytes per write call. LAB.md / undo-file.ts: large calls pay the kernel's per-call
 * dirty-page accounting; 1 MiB slices measured fastest for new files.
 */
const WRITE_SLICE = 1 << 20;
/** Writes in flight at once per batch (the thread pool has 4 threads by default). */
const IN_FLIGHT = 4;

const ZEROS = Buffer.alloc(WRITE_SLICE);

function writeOnce(fd: number, data: Buffer, at: number, length: number, pos: number) {
  return new Promise<number>((resolve, reject) =>
    write(fd, data, at, length, pos, (e, n) => (e ? reject(e) : resolve(n))),
  );
}

/** Writes all of `data` at `position` (in WRITE_SLICE calls). */
export async function pwriteAll(fd: number, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const n = Math.min(WRITE_SLICE, data.length - done);
    done += await writeOnce(fd, data, done, n, position + done);
  }
}

export function datasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve())));
}

/** One write of a batch: `data` at `position` of descriptor `fd`. */
interface WriteJob {
  readonly fd: number;
  readonly data: Buffer;
  readonly position: number;
}

/** Runs the jobs with up to IN_FLIGHT in flight; waits for all of them even on an error. */
async function runJobs(jobs: readonly WriteJob[]): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < jobs.length && !failed) {
      const j = jobs[next++]!;
      try {
        await pwriteAll(j.fd, j.data, j.position);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  const workers = Array.from({ length: Math.min(IN_FLIGHT, jobs.length) }, worker);
  const bad = (await Promise.allSettled(workers)).find((r) => r.status === 'rejected');
  if (bad) throw bad.reason;
}

/** Writes onto the replica disks through descriptors of their own (the thread pool). */
export interface ExtentWriter {
  /** Writes every extent (zeros for data === null), then fdatasyncs the disks it touched. */
  writeDurably(extents: readonly Extent[]): Promise<void>;
  close(): void;
}

/**
 * With the image paths, writes go out on the thread pool, a few at a time, and the disks are
 * fdatasynced there too. Without them (tests with in-memory setups) the disks' synchronous
 * calls write and `syncAsync` makes durable.
 */
export function extentWriter(disks: readonly RawDisk[], paths?: readonly string[]): ExtentWriter {
  const fds = paths?.map((p) => openSync(p, constants.O_WRONLY));
  return {
    async writeDurably(extents) {
      const touched = new Set<number>();
      for (const e of extents) touched.add(e.disk);
      if (!fds) {
        for (const e of extents) {
          const d = disks[e.disk]!;
          if (e.data === null) d.zeroSync(e.offset, e.length);
          else d.writeSync(e.offset, e.data);
        }
      } else {
        const jobs: WriteJob[] = [];
        for (const e of extents) {
          const fd = fds[e.disk]!;
          if (e.data !== null) {
            jobs.push({ fd, data: e.data, position: e.offset });
            continue;
          }
          for (let at = 0; at < e.length; at += WRITE_SLICE) {
            const n = Math.min(WRITE_SLICE, e.length - at);
            jobs.push({ fd, data: ZEROS.subarray(0, n), position: e.offset + at });
          }
        }
        await runJobs(jobs);
      }
      await Promise.all([...touched].map((d) => disks[d]!.syncAsync()));
    },
    close() {
      for (const fd of fds ?? []) closeSync(fd);
    },
  };
}
