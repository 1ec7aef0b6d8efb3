import { describe, expect, it } from 'vitest';
import { seededRandom, testSeed, type Random } from '../../../test/helpers/seeded-random.ts';
import { isAllZero } from '../../../common/bytes/all-zero.ts';
import { coalesce, type CoalesceOp } from './coalesce.ts';
import type { Extent } from './types.ts';

const w = (disk: number, offset: number, bytes: number[]): CoalesceOp => ({
  disk,
  offset,
  length: bytes.length,
  data: Buffer.from(bytes),
});
const z = (disk: number, offset: number, length: number): CoalesceOp => ({
  disk,
  offset,
  length,
  data: null,
});
const show = (es: Extent[]) =>
  es.map((e) => [e.disk, e.offset, e.length, e.data ? [...e.data] : null]);

describe('coalesce', () => {
  it('keeps the surviving pieces of a write partly overwritten later', () => {
    const out = coalesce([w(0, 0, [1, 1, 1, 1, 1, 1]), w(0, 2, [2, 2]), z(0, 5, 3)]);
    expect(show(out)).toEqual([
      [0, 0, 2, [1, 1]],
      [0, 2, 2, [2, 2]],
      [0, 4, 1, [1]],
      [0, 5, 3, null],
    ]);
  });

  it('an earlier write fully covered by a later one disappears', () => {
    expect(show(coalesce([w(0, 3, [9]), w(0, 2, [1, 2, 3])]))).toEqual([[0, 2, 3, [1, 2, 3]]]);
  });

  it('a later write inside a trim splits it, and zero data becomes null when asked', () => {
    const ops = [z(1, 0, 10), w(1, 4, [0, 0]), w(0, 0, [5])];
    expect(show(coalesce(ops))).toEqual([
      [0, 0, 1, [5]],
      [1, 0, 10, null],
    ]);
    expect(show(coalesce(ops, { detectZeros: false }))).toEqual([
      [0, 0, 1, [5]],
      [1, 0, 4, null],
      [1, 4, 2, [0, 0]],
      [1, 6, 4, null],
    ]);
  });

  it('returns subarrays of the operations, never copies', () => {
    const op = w(0, 0, [1, 2, 3, 4]);
    const [first] = coalesce([op, w(0, 2, [7, 7])]);
    expect(first?.data?.buffer).toBe(op.data?.buffer);
  });

  it('ignores empty operations and handles adjacency without merging different writes', () => {
    expect(show(coalesce([w(0, 0, [1]), w(0, 1, [2]), z(0, 9, 0)]))).toEqual([
      [0, 0, 1, [1]],
      [0, 1, 1, [2]],
    ]);
  });

  it('matches a byte-array model on random operations', () => {
    const rnd = seededRandom(testSeed('coalesce property'));
    for (let round = 0; round < 300; round++) checkAgainstModel(rnd, round);
  });
});

const DISK_SIZE = 512;

function checkAgainstModel(rnd: Random, round: number): void {
  const disks = rnd.range(1, 3);
  const ops: CoalesceOp[] = [];
  for (let i = rnd.range(0, 40); i > 0; i--) ops.push(randomOp(rnd, disks));
  const detectZeros = rnd.next() < 0.5;
  const out = coalesce(ops, { detectZeros });

  // Model: per byte, the value after all ops, or undefined if no op touched it.
  const model = Array.from({ length: disks }, () => new Array<number | undefined>(DISK_SIZE));
  for (const op of ops) {
    for (let i = 0; i < op.length; i++) model[op.disk]![op.offset + i] = op.data ? op.data[i]! : 0;
  }
  const seen = Array.from({ length: disks }, () => new Array<number | undefined>(DISK_SIZE));
  let prev: Extent | undefined;
  for (const e of out) {
    expect(e.length, `round ${round}: empty extent`).toBeGreaterThan(0);
    if (prev) {
      const ordered =
        prev.disk < e.disk || (prev.disk === e.disk && prev.offset + prev.length <= e.offset);
      expect(ordered, `round ${round}: extents out of order or overlapping`).toBe(true);
    }
    if (e.data) expect(e.data.length).toBe(e.length);
    if (detectZeros && e.data)
      expect(isAllZero(e.data), `round ${round}: zero data kept`).toBe(false);
    for (let i = 0; i < e.length; i++) seen[e.disk]![e.offset + i] = e.data ? e.data[i]! : 0;
    prev = e;
  }
  expect(seen, `round ${round}`).toEqual(model);
}

function randomOp(rnd: Random, disks: number): CoalesceOp {
  const disk = rnd.int(disks);
  const offset = rnd.int(DISK_SIZE);
  const length = rnd.range(0, Math.min(96, DISK_SIZE - offset));
  const kind = rnd.int(4);
  if (kind === 0) return { disk, offset, length, data: null };
  const data = kind === 1 ? Buffer.alloc(length) : rnd.fill(Buffer.alloc(length));
  return { disk, offset, length, data };
}
