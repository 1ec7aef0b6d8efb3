/**
 * Giving up the journal for a dirty bitmap (resync-required), crash-safely. Steps, in order:
 * 1. the bitmap file is written and fsynced with every block the unshipped journal touched
 *    (those changes never reach the replica now) plus whatever the caller is about to write;
 * 2. the state file switches to resync-required (atomic replace);
 * 3. the segments are deleted.
 * A crash before 2 reopens as journaling (the stray bitmap is deleted, the segments are all
 * there); after 2, as resync-required (leftover segments are deleted at open).
 */
import { rmSync } from 'node:fs';
import { DirtyBitmap } from './dirty-bitmap.ts';
import { fsyncDir } from './journal-dir.ts';
import { writeStateFile } from './journal-state.ts';
import { RecordType } from './segment-format.ts';
import { scanSegment } from './segment-reader.ts';

export interface TouchedRange {
  readonly disk: number;
  readonly offset: number;
  readonly length: number;
}

/** Ranges the records of these segments touched; reads record headers only. */
export function touchedRanges(
  segments: ReadonlyArray<{ path: string; limit?: number }>,
): TouchedRange[] {
  const out: TouchedRange[] = [];
  for (const s of segments) {
    const opts = s.limit === undefined ? { payloads: false } : { payloads: false, limit: s.limit };
    scanSegment(
      s.path,
      (r) => {
        if (r.type !== RecordType.seal)
          out.push({ disk: r.disk, offset: r.offset, length: r.length });
      },
      opts,
    );
  }
  return out;
}

export function fullDiskRanges(diskSizes: readonly number[]): TouchedRange[] {
  return diskSizes.map((length, disk) => ({ disk, offset: 0, length }));
}

export function enterResyncRequired(p: {
  dir: string;
  diskSizes: readonly number[];
  ranges: Iterable<TouchedRange>;
  segmentPaths: readonly string[];
  nextSeq: number;
  bootId: string | undefined;
}): DirtyBitmap {
  const bitmap = DirtyBitmap.create(p.dir, p.diskSizes, p.ranges);
  writeStateFile(p.dir, {
    version: 1,
    state: 'resync-required',
    nextSeq: p.nextSeq,
    ...(p.bootId === undefined ? {} : { openBootId: p.bootId }),
  });
  for (const path of p.segmentPaths) rmSync(path, { force: true });
  fsyncDir(p.dir);
  return bitmap;
}

/** Reopens a journal already in resync-required: its bitmap, minus any leftover segments. */
export function reopenResyncRequired(p: {
  dir: string;
  diskSizes: readonly number[];
  segmentPaths: readonly string[];
  nextSeq: number;
  bootId: string | undefined;
}): { bitmap: DirtyBitmap; rebuilt: boolean } {
  let bitmap: DirtyBitmap;
  let rebuilt = false;
  try {
    bitmap = DirtyBitmap.open(p.dir, p.diskSizes);
  } catch {
    // Unreadable or for other disk sizes: every block is suspect.
    bitmap = DirtyBitmap.create(p.dir, p.diskSizes, fullDiskRanges(p.diskSizes));
    rebuilt = true;
  }
  writeStateFile(p.dir, {
    version: 1,
    state: 'resync-required',
    nextSeq: p.nextSeq,
    ...(p.bootId === undefined ? {} : { openBootId: p.bootId }),
  });
  for (const path of p.segmentPaths) rmSync(path, { force: true });
  fsyncDir(p.dir);
  return { bitmap, rebuilt };
}
