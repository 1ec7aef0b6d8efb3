/**
 * Where the newest contents of each byte live while they are journaled but not yet applied to
 * the raw disk: per disk, a sorted list of non-overlapping pieces, each pointing into a segment
 * file (the payload of a WRITE record) or reading as zeros (TRIM / WRITE_ZEROES). Bytes with
 * no piece read from the raw disk. Pure bookkeeping: the journal does the I/O.
 *
 * Inserting a range replaces whatever it overlaps, splitting the pieces at its edges (the last
 * write wins at byte granularity). Cost: a binary search plus an array splice; sequential
 * writes append at the end, random ones cost a memmove of the pieces after the insertion point
 * (about 1 ms at a million pieces).
 */

/** `pos` is the segment-file position of the piece's first byte. */
export type PieceSource =
  | { readonly kind: 'data'; readonly seg: number; readonly pos: number }
  | { readonly kind: 'zero'; readonly seg: number };

export interface Piece {
  readonly start: number;
  readonly end: number;
  readonly src: PieceSource;
}

/** A stretch of a lookup: `src === null` reads from the raw disk. */
export interface Span {
  readonly start: number;
  readonly end: number;
  readonly src: PieceSource | null;
}

export class OverlayMap {
  private readonly disks = new Map<number, Piece[]>();

  /** Number of pieces over all disks. */
  get size(): number {
    let n = 0;
    for (const p of this.disks.values()) n += p.length;
    return n;
  }

  set(disk: number, start: number, length: number, src: PieceSource): void {
    if (length <= 0) return;
    const end = start + length;
    let pieces = this.disks.get(disk);
    if (!pieces) {
      pieces = [];
      this.disks.set(disk, pieces);
    }
    const i = firstEndingAfter(pieces, start);
    let j = i;
    while (j < pieces.length && pieces[j]!.start < end) j++;
    const replacement: Piece[] = [];
    const first = pieces[i];
    if (i < j && first && first.start < start) replacement.push(slice(first, first.start, start));
    replacement.push({ start, end, src });
    const last = pieces[j - 1];
    if (i < j && last && last.end > end) replacement.push(slice(last, end, last.end));
    if (i === pieces.length) pieces.push(...replacement);
    else pieces.splice(i, j - i, ...replacement);
  }

  /** Covers [start, start + length) exactly, in order, with pieces and raw-disk gaps. */
  lookup(disk: number, start: number, length: number): Span[] {
    const end = start + length;
    const pieces = this.disks.get(disk) ?? [];
    const out: Span[] = [];
    let at = start;
    for (let i = firstEndingAfter(pieces, start); i < pieces.length; i++) {
      const p = pieces[i]!;
      if (p.start >= end) break;
      if (p.start > at) out.push({ start: at, end: p.start, src: null });
      const from = Math.max(at, p.start);
      const to = Math.min(end, p.end);
      out.push(slice(p, from, to));
      at = to;
    }
    if (at < end) out.push({ start: at, end, src: null });
    return out;
  }

  /** Every piece, disk by disk in offset order, optionally only those of segment `seg`. */
  pieces(seg?: number): Array<Piece & { disk: number }> {
    const out: Array<Piece & { disk: number }> = [];
    for (const disk of [...this.disks.keys()].sort((a, b) => a - b)) {
      for (const p of this.disks.get(disk)!) {
        if (seg === undefined || p.src.seg === seg) out.push({ ...p, disk });
      }
    }
    return out;
  }

  /** Forgets the pieces of segment `seg` (once the segment is applied to the disks). */
  removeSegment(seg: number): void {
    for (const [disk, pieces] of this.disks) {
      const kept = pieces.filter((p) => p.src.seg !== seg);
      if (kept.length === 0) this.disks.delete(disk);
      else if (kept.length !== pieces.length) this.disks.set(disk, kept);
    }
  }

  clear(): void {
    this.disks.clear();
  }
}

/** The part [from, to) of a piece, its file position moved along for data. */
function slice(p: Piece, from: number, to: number): Piece {
  const src: PieceSource =
    p.src.kind === 'data'
      ? { kind: 'data', seg: p.src.seg, pos: p.src.pos + (from - p.start) }
      : p.src;
  return { start: from, end: to, src };
}

/** Index of the first piece whose end is past `offset` (pieces are sorted and disjoint). */
function firstEndingAfter(pieces: readonly Piece[], offset: number): number {
  let lo = 0;
  let hi = pieces.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (pieces[mid]!.end <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
