/**
 * Point-in-time reads: resolve.ts decides the source of every sub-range, this file fetches the
 * bytes — undo images from the indexed undo files, the rest from the replica disk itself.
 */
import type { RawDisk } from '../vm/raw-disk.ts';
import { resolveRead } from './resolve.ts';
import type { UndoIndex } from './undo-index.ts';

/**
 * Bytes [offset, offset+length) of disk number `diskNo` at the point sealed by segment
 * `pointSeq`. The range must already be checked against the disk size.
 */
export function readAtPoint(
  index: UndoIndex,
  disk: RawDisk,
  diskNo: number,
  pointSeq: number,
  offset: number,
  length: number,
): Buffer {
  const out = Buffer.allocUnsafe(length);
  const later = index.touchesAfter(pointSeq, diskNo, offset, offset + length);
  for (const piece of resolveRead({ offset, length }, later)) {
    const into = out.subarray(piece.offset - offset, piece.offset - offset + piece.length);
    if (piece.source.kind === 'current') {
      disk.readSync(piece.offset, piece.length, into);
    } else {
      const { seq, ref } = piece.source;
      const runOffset = index.get(seq)!.runs.offset[ref]!;
      index.readRun(seq, ref, piece.offset - runOffset, into);
    }
  }
  return out;
}
