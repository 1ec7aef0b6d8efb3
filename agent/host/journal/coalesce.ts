/**
 * Coalescing: the operations of one segment, in journal order, become the final contents of
 * every byte range they touched: extents sorted by (disk, offset), never overlapping, the last
 * operation winning at byte granularity. Pure: no I/O, no copies (data extents are subarrays of
 * the operations' buffers).
 *
 * Method, per disk, O(n log n) for n operations: the starts and ends of all operations cut the
 * disk into elementary intervals; over each one the winner is the latest operation covering
 * it. A sweep in offset order keeps the covering operations in a max-heap by journal index
 * (operations that ended are dropped lazily when they reach the top). Neighbouring intervals
 * won by the same operation, or both reading as zeros, merge into one extent.
 */
import { isAllZero } from '../../../common/bytes/all-zero.ts';
import type { Extent } from './types.ts';

/** One journaled change. `data === null`: the range reads as zeros (TRIM, WRITE_ZEROES). */
export interface CoalesceOp {
  readonly disk: number;
  readonly offset: number;
  readonly length: number;
  readonly data: Buffer | null;
}

export interface CoalesceOptions {
  /**
   * Turn data extents that are all zeros into `data: null` (cheaper to ship and apply).
   * @default true
   */
  readonly detectZeros?: boolean;
}

export function coalesce(ops: readonly CoalesceOp[], opts: CoalesceOptions = {}): Extent[] {
  const byDisk = new Map<number, number[]>();
  ops.forEach((op, i) => {
    if (op.length <= 0) return;
    const list = byDisk.get(op.disk);
    if (list) list.push(i);
    else byDisk.set(op.disk, [i]);
  });
  const out: Extent[] = [];
  for (const disk of [...byDisk.keys()].sort((a, b) => a - b)) {
    const pieces = sweepDisk(ops, byDisk.get(disk) ?? []);
    const finished = (opts.detectZeros ?? true) ? pieces.map(zeroIfBlank) : pieces;
    out.push(...mergeZeros(finished));
  }
  return out;
}

function sweepDisk(ops: readonly CoalesceOp[], indices: number[]): Extent[] {
  const end = (i: number) => ops[i]!.offset + ops[i]!.length;
  const byStart = [...indices].sort((a, b) => ops[a]!.offset - ops[b]!.offset || a - b);
  const points = uniqueSorted(indices.flatMap((i) => [ops[i]!.offset, end(i)]));
  const heap = new MaxHeap();
  const out: Extent[] = [];
  let next = 0;
  let last: { op: number; extent: Extent } | undefined;
  for (let k = 0; k + 1 < points.length; k++) {
    const from = points[k]!;
    const to = points[k + 1]!;
    while (next < byStart.length && ops[byStart[next]!]!.offset <= from)
      heap.push(byStart[next++]!);
    while (heap.size > 0 && end(heap.peek()) <= from) heap.pop();
    if (heap.size === 0) {
      last = undefined;
      continue;
    }
    const winner = heap.peek();
    if (last && last.op === winner && last.extent.offset + last.extent.length === from) {
      last.extent = piece(ops[winner]!, last.extent.offset, to);
      out[out.length - 1] = last.extent;
    } else {
      last = { op: winner, extent: piece(ops[winner]!, from, to) };
      out.push(last.extent);
    }
  }
  return out;
}

function piece(op: CoalesceOp, from: number, to: number): Extent {
  const data = op.data ? op.data.subarray(from - op.offset, to - op.offset) : null;
  return { disk: op.disk, offset: from, length: to - from, data };
}

function mergeZeros(extents: Extent[]): Extent[] {
  const out: Extent[] = [];
  for (const e of extents) {
    const prev = out[out.length - 1];
    if (prev && prev.data === null && e.data === null && prev.offset + prev.length === e.offset) {
      out[out.length - 1] = { ...prev, length: prev.length + e.length };
    } else {
      out.push(e);
    }
  }
  return out;
}

function zeroIfBlank(e: Extent): Extent {
  return e.data && isAllZero(e.data) ? { ...e, data: null } : e;
}

function uniqueSorted(xs: number[]): number[] {
  xs.sort((a, b) => a - b);
  return xs.filter((x, i) => i === 0 || x !== xs[i - 1]);
}

/** Max-heap of operation indices: the latest operation is on top. */
class MaxHeap {
  private readonly a: number[] = [];
  get size(): number {
    return this.a.length;
  }
  peek(): number {
    return this.a[0]!;
  }
  push(x: number): void {
    const a = this.a;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! >= a[i]!) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): void {
    const a = this.a;
    const lastItem = a.pop()!;
    if (a.length === 0) return;
    a[0] = lastItem;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && a[l]! > a[m]!) m = l;
      if (r < a.length && a[r]! > a[m]!) m = r;
      if (m === i) return;
      [a[m], a[i]] = [a[i]!, a[m]!];
      i = m;
    }
  }
}
