/**
 * Splits a coalesced segment's extents into chunk-sized pieces (pure, no copies: pieces are
 * subarrays of the extents' data). A chunk holds at most `maxRawBytes` of data and
 * `maxExtents` extents; zero ranges cost no bytes when the peer accepts them, otherwise they
 * travel as bytes of zeros like any data.
 */
import type { Extent } from '../journal/types.ts';

export interface ChunkPlan {
  /** Pieces in order; `data === null` only for zero ranges. */
  readonly extents: Extent[];
  /** Sum of the pieces' data lengths. */
  readonly rawLength: number;
}

export interface PlanOptions {
  readonly maxRawBytes: number;
  readonly maxExtents: number;
  /** The peer accepts zero ranges (FEATURE_ZERO_RANGES). */
  readonly zeroRanges: boolean;
}

let zeros: Buffer = Buffer.alloc(0);
function zeroBytes(length: number): Buffer {
  if (zeros.length < length) zeros = Buffer.alloc(length);
  return zeros.subarray(0, length);
}

export function* planChunks(
  extents: Iterable<Extent>,
  opts: PlanOptions,
): Generator<ChunkPlan, void, undefined> {
  let pieces: Extent[] = [];
  let raw = 0;
  const full = (): boolean => raw >= opts.maxRawBytes || pieces.length >= opts.maxExtents;
  const take = (): ChunkPlan => {
    const plan = { extents: pieces, rawLength: raw };
    pieces = [];
    raw = 0;
    return plan;
  };
  for (const e of extents) {
    if (e.data !== null && e.data.length !== e.length) {
      throw new RangeError(
        `extent ${e.disk}:${e.offset} has ${e.data.length} bytes for ${e.length}`,
      );
    }
    if (e.data === null && opts.zeroRanges) {
      if (full()) yield take();
      pieces.push(e);
      continue;
    }
    for (let pos = 0; pos < e.length;) {
      if (full()) yield take();
      const n = Math.min(e.length - pos, opts.maxRawBytes - raw);
      const data = e.data === null ? zeroBytes(n) : e.data.subarray(pos, pos + n);
      pieces.push({ disk: e.disk, offset: e.offset + pos, length: n, data });
      raw += n;
      pos += n;
    }
  }
  if (pieces.length > 0) yield take();
}
