/**
 * Point-in-time reads: resolve.ts decides the source of every sub-range, this file fetches the
 * bytes — undo images from the indexed undo files, the rest from the replica disk itself.
 */
import type { RawDisk } from '../vm/raw-disk.ts';
import { resolveRead, type SegmentTouch } from './resolve.ts';
import type { UndoIndex } from './undo-index.ts';

/**
 * A resync's undo log (resync-layer.ts) as reads see it: one more source of old contents,
 * ordered after every segment up to `after` and before every segment after it.
 */
export interface ReadLayer {
  readonly after: number;
  touching(disk: number, start: number, end: number): SegmentTouch['touched'];
  readPiece(disk: number, ref: number, from: number, into: Buffer): void;
}

/** Stands for the layer in resolved pieces; real segments are numbered from 1. */
const LAYER_SEQ = -1;

function* withLayer(
  touches: Iterable<SegmentTouch>,
  layer: ReadLayer,
  disk: number,
  start: number,
  end: number,
): Generator<SegmentTouch> {
  let done = false;
  for (const t of touches) {
    if (!done && t.seq > layer.after) {
      done = true;
      yield { seq: LAYER_SEQ, touched: layer.touching(disk, start, end) };
    }
    yield t;
  }
  if (!done) yield { seq: LAYER_SEQ, touched: layer.touching(disk, start, end) };
}

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
  layer?: ReadLayer,
): Buffer {
  const out = Buffer.allocUnsafe(length);
  let later: Iterable<SegmentTouch> = index.touchesAfter(pointSeq, diskNo, offset, offset + length);
  if (layer && pointSeq <= layer.after) {
    later = withLayer(later, layer, diskNo, offset, offset + length);
  }
  for (const piece of resolveRead({ offset, length }, later)) {
    const into = out.subarray(piece.offset - offset, piece.offset - offset + piece.length);
    if (piece.source.kind === 'current') {
      disk.readSync(piece.offset, piece.length, into);
    } else if (piece.source.seq === LAYER_SEQ) {
      layer!.readPiece(diskNo, piece.source.ref, piece.offset, into);
    } else {
      const { seq, ref } = piece.source;
      const runOffset = index.get(seq)!.runs.offset[ref]!;
      index.readRun(seq, ref, piece.offset - runOffset, into);
    }
  }
  return out;
}
