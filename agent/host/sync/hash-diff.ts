/**
 * Comparing chunk hashes (pure): the replica answers a RangeHashes with a bit set of the chunks
 * that differ (replication.proto RangeDiff: bit i is byte i >> 3, bit i & 7, least significant
 * first).
 */

export interface RangeDiff {
  readonly differ: Uint8Array;
  readonly differingCount: number;
}

/** Chunk i differs when the hashes differ or one side has none. */
export function diffHashes(
  source: readonly Uint8Array[],
  replica: readonly Uint8Array[],
): RangeDiff {
  const n = Math.max(source.length, replica.length);
  const differ = new Uint8Array(Math.ceil(n / 8));
  let differingCount = 0;
  for (let i = 0; i < n; i++) {
    const a = source[i];
    const b = replica[i];
    if (a && b && sameBytes(a, b)) continue;
    differ[i >> 3]! |= 1 << (i & 7);
    differingCount++;
  }
  return { differ, differingCount };
}

/** Indexes of the set bits, ascending, below `count`. */
export function differingIndexes(differ: Uint8Array, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) if ((differ[i >> 3]! >> (i & 7)) & 1) out.push(i);
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
