/**
 * The chunk grid shared by initial copy and resync (pure): which byte ranges to copy or
 * compare, cut into whole chunks, plus zero detection and progress accounting.
 *
 * Every range handed to the peer starts on a multiple of `chunkBytes` (ResyncStart in
 * replication.proto) and only the last chunk of a disk may be short, so both sides hash the
 * same chunks without agreeing on anything but the chunk size.
 */

export interface DiskRange {
  readonly disk: number;
  readonly offset: number;
  readonly length: number;
}

/** Everything before (disk, offset) is done; disks are walked in index order. */
export interface GridCursor {
  readonly disk: number;
  readonly offset: number;
}

/** 1 MiB: measured here (LAB.md), 1 MiB calls reach the disk's sequential speed. */
export const DEFAULT_CHUNK_BYTES = 1 << 20;
/** replication.proto: chunks are powers of two from 4 KiB to 4 MiB. */
export const MIN_CHUNK_BYTES = 4096;
export const MAX_CHUNK_BYTES = 4 << 20;

export function validChunkBytes(n: number): boolean {
  return (
    Number.isSafeInteger(n) && n >= MIN_CHUNK_BYTES && n <= MAX_CHUNK_BYTES && (n & (n - 1)) === 0
  );
}

export function wholeDisks(diskSizes: readonly number[]): DiskRange[] {
  return diskSizes.flatMap((length, disk) => (length > 0 ? [{ disk, offset: 0, length }] : []));
}

/**
 * Widens ranges (e.g. the journal's 64 KiB dirty blocks) to whole chunks, clips them to the
 * disks and merges what touches: sorted by (disk, offset), non-overlapping.
 */
export function alignToChunks(
  ranges: Iterable<DiskRange>,
  diskSizes: readonly number[],
  chunkBytes: number,
): DiskRange[] {
  const spans: Array<[number, number, number]> = [];
  for (const r of ranges) {
    const size = diskSizes[r.disk];
    if (size === undefined || r.length <= 0) continue;
    const start = Math.floor(r.offset / chunkBytes) * chunkBytes;
    const end = Math.min(size, Math.ceil((r.offset + r.length) / chunkBytes) * chunkBytes);
    if (end > start) spans.push([r.disk, start, end]);
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: Array<[number, number, number]> = [];
  for (const s of spans) {
    const last = out.at(-1);
    if (last && last[0] === s[0] && s[1] <= last[2]) last[2] = Math.max(last[2], s[2]);
    else out.push([...s]);
  }
  return out.map(([disk, start, end]) => ({ disk, offset: start, length: end - start }));
}

/** The journal's dirtyRanges() shape as DiskRanges. */
export function fromDirtyMap(
  map: ReadonlyMap<number, ReadonlyArray<[number, number]>>,
): DiskRange[] {
  const out: DiskRange[] = [];
  for (const [disk, list] of map)
    for (const [offset, length] of list) out.push({ disk, offset, length });
  return out;
}

/** The parts of sorted `ranges` at or after `cursor`. */
export function rangesFrom(ranges: readonly DiskRange[], cursor: GridCursor): DiskRange[] {
  const out: DiskRange[] = [];
  for (const r of ranges) {
    if (r.disk < cursor.disk) continue;
    if (r.disk > cursor.disk || r.offset >= cursor.offset) {
      out.push(r);
      continue;
    }
    const end = r.offset + r.length;
    if (end > cursor.offset)
      out.push({ disk: r.disk, offset: cursor.offset, length: end - cursor.offset });
  }
  return out;
}

/** Cuts ranges into pieces of at most `maxChunks` chunks, each starting on the grid. */
export function* batches(
  ranges: readonly DiskRange[],
  chunkBytes: number,
  maxChunks: number,
): Generator<DiskRange> {
  const step = chunkBytes * maxChunks;
  for (const r of ranges) {
    for (let at = r.offset; at < r.offset + r.length; at += step) {
      yield { disk: r.disk, offset: at, length: Math.min(step, r.offset + r.length - at) };
    }
  }
}

export function chunkCount(length: number, chunkBytes: number): number {
  return Math.ceil(length / chunkBytes);
}

export function totalBytes(ranges: readonly DiskRange[]): number {
  return ranges.reduce((n, r) => n + r.length, 0);
}

/** Bytes of `ranges` before `cursor`: progress of a walk over them. */
export function bytesBefore(ranges: readonly DiskRange[], cursor: GridCursor): number {
  return totalBytes(ranges) - totalBytes(rangesFrom(ranges, cursor));
}

/** The cursor just past `r`. */
export function cursorAfter(r: DiskRange): GridCursor {
  return { disk: r.disk, offset: r.offset + r.length };
}
