/**
 * Undo runs (pure): the byte ranges whose old contents an undo file holds, in the file's order.
 *
 * A run is a maximal stretch of adjacent extents of one disk, cut at MAX_RUN_BYTES: adjacent
 * extents are read from the replica with one large read instead of many small random ones
 * (LAB.md: reading undo data is the random read that limits the apply path), and the cut keeps
 * every run within one batch buffer and its checksum granular.
 *
 * Runs are kept in typed arrays, not objects: a day of retention can index millions of runs
 * and this costs 36 bytes each.
 */
import type { Extent } from '../journal/types.ts';
import type { TouchedRange } from './resolve.ts';

/** 1 MiB: large enough that a sequential run costs one syscall per MiB. */
export const MAX_RUN_BYTES = 1 << 20;

export interface UndoRuns {
  readonly count: number;
  readonly disk: Uint32Array;
  readonly offset: Float64Array;
  readonly length: Float64Array;
  /** Where the run's old contents start in the undo file. */
  readonly fileOffset: Float64Array;
  /** crc32 of the run's old contents. */
  readonly crc: Uint32Array;
}

export function allocRuns(count: number): UndoRuns {
  return {
    count,
    disk: new Uint32Array(count),
    offset: new Float64Array(count),
    length: new Float64Array(count),
    fileOffset: new Float64Array(count),
    crc: new Uint32Array(count),
  };
}

/**
 * Plans the runs for a coalesced segment (extents sorted by (disk, offset), non-overlapping).
 * Data is laid out from `dataStart` in run order; crcs are left zero for the writer to fill.
 */
export function planUndoRuns(
  extents: readonly Extent[],
  dataStart: number,
  maxRun = MAX_RUN_BYTES,
): UndoRuns {
  const spans: RunSpan[] = [];
  for (const e of extents) extendRuns(spans.at(-1), e, maxRun, (s) => spans.push(s));
  const runs = allocRuns(spans.length);
  let at = dataStart;
  spans.forEach(([disk, offset, length], i) => {
    runs.disk[i] = disk;
    runs.offset[i] = offset;
    runs.length[i] = length;
    runs.fileOffset[i] = at;
    at += length;
  });
  return runs;
}

/** A run being planned: disk, offset, length. */
export type RunSpan = [disk: number, offset: number, length: number];

/**
 * Adds extent `e` after the run `last`: grows `last` while `e` continues it (up to `maxRun`),
 * then starts new runs of at most `maxRun` through `start`. The one rule for cutting runs, used
 * by the apply (planUndoRuns) and by the staging that builds the same file ahead of it.
 */
export function extendRuns(
  last: RunSpan | undefined,
  e: Pick<Extent, 'disk' | 'offset' | 'length'>,
  maxRun: number,
  start: (run: RunSpan) => void,
): void {
  let offset = e.offset;
  let left = e.length;
  if (last && last[0] === e.disk && last[1] + last[2] === offset && last[2] < maxRun) {
    const take = Math.min(left, maxRun - last[2]);
    last[2] += take;
    offset += take;
    left -= take;
  }
  while (left > 0) {
    const take = Math.min(left, maxRun);
    start([e.disk, offset, take]);
    offset += take;
    left -= take;
  }
}

export function runsDataBytes(runs: UndoRuns): number {
  let total = 0;
  for (let i = 0; i < runs.count; i++) total += runs.length[i]!;
  return total;
}

/**
 * The runs of `disk` that intersect [start, end), as TouchedRanges whose ref is the run index.
 * Binary search: runs are sorted by (disk, offset) and never overlap, so run ends increase too.
 */
export function runsTouching(
  runs: UndoRuns,
  disk: number,
  start: number,
  end: number,
): TouchedRange[] {
  let lo = 0;
  let hi = runs.count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const d = runs.disk[mid]!;
    if (d < disk || (d === disk && runs.offset[mid]! + runs.length[mid]! <= start)) lo = mid + 1;
    else hi = mid;
  }
  const out: TouchedRange[] = [];
  for (let i = lo; i < runs.count && runs.disk[i] === disk && runs.offset[i]! < end; i++) {
    out.push({ offset: runs.offset[i]!, length: runs.length[i]!, ref: i });
  }
  return out;
}
