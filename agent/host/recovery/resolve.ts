/**
 * Point-in-time read resolution (pure). The replica disk is always at the latest applied
 * segment; the undo data of segment S holds what S's ranges contained just before S was
 * applied. So byte b at recovery point P (sealed by segment p) is the undo image of the first
 * segment S > p that touched b, or the current replica byte when no later segment touched it.
 *
 * Input: the query range and, in ascending seq order, the ranges each later segment touched.
 * Output: the query split into pieces, each naming its source. Segments are consumed lazily so
 * a read stops looking as soon as every byte has a source.
 */

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/** A range a segment touched; `ref` is the caller's handle on it (its undo run), passed through. */
export interface TouchedRange extends ByteRange {
  readonly ref: number;
}

export interface SegmentTouch {
  readonly seq: number;
  /** Sorted by offset, non-overlapping; ranges outside the query are allowed and ignored. */
  readonly touched: readonly TouchedRange[];
}

export type PieceSource =
  | { readonly kind: 'current' }
  | { readonly kind: 'undo'; readonly seq: number; readonly ref: number };

export interface ReadPiece extends ByteRange {
  readonly source: PieceSource;
}

const CURRENT: PieceSource = Object.freeze({ kind: 'current' });

/** [start, end) half-open intervals are easier to cut than (offset, length) pairs. */
type Span = [start: number, end: number];

/**
 * Splits `query` into pieces sourced from the undo data of `later` segments (ascending seq,
 * all applied after the point being read) or from the current replica contents.
 * The pieces are sorted by offset, never overlap and exactly cover the query.
 */
export function resolveRead(query: ByteRange, later: Iterable<SegmentTouch>): ReadPiece[] {
  const pieces: ReadPiece[] = [];
  if (query.length <= 0) return pieces;
  let gaps: Span[] = [[query.offset, query.offset + query.length]];
  for (const segment of later) {
    gaps = claimGaps(gaps, segment, pieces);
    if (gaps.length === 0) break;
  }
  for (const [start, end] of gaps) {
    pieces.push({ offset: start, length: end - start, source: CURRENT });
  }
  return pieces.sort((a, b) => a.offset - b.offset);
}

/**
 * Gives every part of `gaps` that `segment` touched to that segment's undo data (appending to
 * `pieces`) and returns what is still unclaimed. Both lists are sorted: one merge pass.
 */
function claimGaps(gaps: readonly Span[], segment: SegmentTouch, pieces: ReadPiece[]): Span[] {
  const left: Span[] = [];
  let t = 0;
  const touched = segment.touched;
  for (const gap of gaps) {
    let [cursor] = gap;
    const gapEnd = gap[1];
    // Skip touched ranges that end before this gap starts.
    while (t < touched.length && end(touched[t]!) <= cursor) t++;
    let i = t;
    while (i < touched.length && touched[i]!.offset < gapEnd) {
      const range = touched[i]!;
      const from = Math.max(cursor, range.offset);
      const to = Math.min(gapEnd, end(range));
      if (from > cursor) left.push([cursor, from]);
      if (to > from) {
        pieces.push({
          offset: from,
          length: to - from,
          source: { kind: 'undo', seq: segment.seq, ref: range.ref },
        });
      }
      cursor = Math.max(cursor, to);
      i++;
    }
    if (cursor < gapEnd) left.push([cursor, gapEnd]);
  }
  return left;
}

function end(range: ByteRange): number {
  return range.offset + range.length;
}
