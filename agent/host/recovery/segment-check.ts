/**
 * Checks a received coalesced segment before anything is written (pure). A segment that fails
 * here came from a broken or incompatible peer: it is refused with SS_PROTOCOL and the replica
 * is left untouched.
 */
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Extent, RecoveryPointRecord } from '../journal/types.ts';

export interface IncomingSegment {
  readonly seq: number;
  readonly point: RecoveryPointRecord;
  /** Sorted by (disk, offset), non-overlapping; `data === null` means zeros. */
  readonly extents: readonly Extent[];
}

/** Returns undefined when `seg` is well formed for disks of `diskSizes`, else the reason. */
export function segmentProblem(
  seg: IncomingSegment,
  diskSizes: readonly number[],
): string | undefined {
  if (!Number.isSafeInteger(seg.seq) || seg.seq < 1) return `bad seq ${seg.seq}`;
  if (seg.point.segment !== seg.seq) {
    return `point ${seg.point.id} seals segment ${seg.point.segment}, not ${seg.seq}`;
  }
  if (!seg.point.id) return 'point without id';
  let prevDisk = -1;
  let prevEnd = 0;
  for (const [i, e] of seg.extents.entries()) {
    const size = diskSizes[e.disk];
    if (size === undefined || !Number.isInteger(e.disk)) return `extent ${i}: no disk ${e.disk}`;
    if (!Number.isSafeInteger(e.offset) || !Number.isSafeInteger(e.length) || e.length <= 0) {
      return `extent ${i}: bad range ${e.offset}+${e.length}`;
    }
    if (e.offset < 0 || e.offset + e.length > size) {
      return `extent ${i}: ${e.offset}+${e.length} is outside disk ${e.disk} (${size} bytes)`;
    }
    if (e.data !== null && e.data.length !== e.length) {
      return `extent ${i}: ${e.data.length} data bytes for length ${e.length}`;
    }
    if (e.disk < prevDisk || (e.disk === prevDisk && e.offset < prevEnd)) {
      return `extent ${i}: not sorted or overlaps the previous extent`;
    }
    if (e.disk !== prevDisk) prevDisk = e.disk;
    prevEnd = e.offset + e.length;
  }
  return undefined;
}

export function checkSegment(seg: IncomingSegment, diskSizes: readonly number[]): void {
  const problem = segmentProblem(seg, diskSizes);
  if (problem !== undefined) {
    throw new SecondsiteError('SS_PROTOCOL', `segment ${seg.seq} is malformed: ${problem}`, {
      seq: seg.seq,
      problem,
    });
  }
}
