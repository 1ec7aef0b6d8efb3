/**
 * Where a resync's undo log holds the pre-resync bytes of each replica range (pure).
 *
 * A resync may write a chunk more than once (a resumed resync compares again and rewrites a
 * chunk the source changed meanwhile). Only the first record of a byte holds its contents at
 * the last good point: later ones hold bytes an earlier resync batch wrote. So a record added
 * here claims only the parts of its range no earlier record covers ("first write wins"), and
 * the map is, per disk, a sorted list of non-overlapping pieces, each pointing into the log.
 *
 * Records arrive in the resync's (disk, offset) order almost always, so inserting at the end
 * is the common case and costs O(log n).
 */

export interface LayerPiece {
  readonly offset: number;
  readonly length: number;
  /** Position in the undo log of this piece's first old byte. */
  readonly at: number;
}

/** A piece as point-in-time resolution wants it: `ref` is its index in the disk's list. */
export interface LayerTouch {
  readonly offset: number;
  readonly length: number;
  readonly ref: number;
}

export class FirstWriteMap {
  private readonly disks = new Map<number, LayerPiece[]>();

  /** Records that [offset, offset+length) of `disk` had the bytes stored from log position `at`. */
  add(disk: number, offset: number, length: number, at: number): void {
    let list = this.disks.get(disk);
    if (!list) {
      list = [];
      this.disks.set(disk, list);
    }
    const end = offset + length;
    let i = firstEndingAfter(list, offset);
    let cursor = offset;
    const fresh: LayerPiece[] = [];
    for (; i < list.length && list[i]!.offset < end; i++) {
      const p = list[i]!;
      if (p.offset > cursor)
        fresh.push({ offset: cursor, length: p.offset - cursor, at: at + cursor - offset });
      cursor = Math.max(cursor, p.offset + p.length);
    }
    if (cursor < end)
      fresh.push({ offset: cursor, length: end - cursor, at: at + cursor - offset });
    for (const piece of fresh) insertSorted(list, piece);
  }

  /** Pieces of `disk` that intersect [start, end), sorted by offset. */
  touching(disk: number, start: number, end: number): LayerTouch[] {
    const list = this.disks.get(disk) ?? [];
    const out: LayerTouch[] = [];
    for (let i = firstEndingAfter(list, start); i < list.length && list[i]!.offset < end; i++) {
      out.push({ offset: list[i]!.offset, length: list[i]!.length, ref: i });
    }
    return out;
  }

  piece(disk: number, ref: number): LayerPiece | undefined {
    return this.disks.get(disk)?.[ref];
  }

  /** Every piece, as [disk, piece]: writing them all back restores the last good point. */
  *all(): Generator<[number, LayerPiece]> {
    for (const [disk, list] of this.disks) for (const p of list) yield [disk, p];
  }

  /** Bytes of replica the map covers. */
  coveredBytes(): number {
    let n = 0;
    for (const list of this.disks.values()) for (const p of list) n += p.length;
    return n;
  }
}

/** Index of the first piece whose end is after `pos` (pieces' ends ascend with their starts). */
function firstEndingAfter(list: readonly LayerPiece[], pos: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const p = list[mid]!;
    if (p.offset + p.length <= pos) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function insertSorted(list: LayerPiece[], piece: LayerPiece): void {
  if (list.length === 0 || list.at(-1)!.offset < piece.offset) {
    list.push(piece);
    return;
  }
  list.splice(firstEndingAfter(list, piece.offset), 0, piece);
}
