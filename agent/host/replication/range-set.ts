/**
 * Byte ranges seen so far, per disk (pure): `addNew` records a range and returns the parts of
 * it that were not seen before. A live segment's receiver uses it to stage undo data once per
 * byte, for the first write that touches it (the old contents are the replica's, whatever the
 * later writes of the cycle do).
 *
 * Per disk a sorted list of disjoint, non-adjacent intervals [start, end); an insert merges
 * what it touches. Cost: a binary search and a splice, as the journal's overlay map.
 */
export class RangeSet {
  private readonly disks = new Map<number, number[]>();

  /** Adds [offset, offset + length) of `disk`; returns its previously unseen parts, in order. */
  addNew(disk: number, offset: number, length: number): Array<[offset: number, length: number]> {
    if (length <= 0) return [];
    let list = this.disks.get(disk);
    if (!list) {
      list = [];
      this.disks.set(disk, list);
    }
    const start = offset;
    const end = offset + length;
    // list holds start0, end0, start1, end1, …; i: the first interval ending at or after start.
    let lo = 0;
    let hi = list.length / 2;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[2 * mid + 1]! < start) lo = mid + 1;
      else hi = mid;
    }
    const i = lo;
    let j = i;
    const fresh: Array<[number, number]> = [];
    let at = start;
    while (j < list.length / 2 && list[2 * j]! <= end) {
      const s = list[2 * j]!;
      const e = list[2 * j + 1]!;
      if (s > at) fresh.push([at, s - at]);
      at = Math.max(at, e);
      j++;
    }
    if (at < end) fresh.push([at, end - at]);
    const mergedStart = i < j ? Math.min(start, list[2 * i]!) : start;
    const mergedEnd = i < j ? Math.max(end, list[2 * j - 1]!) : end;
    list.splice(2 * i, 2 * (j - i), mergedStart, mergedEnd);
    return fresh;
  }

  /** Number of disjoint intervals over all disks. */
  get size(): number {
    let n = 0;
    for (const l of this.disks.values()) n += l.length / 2;
    return n;
  }
}
