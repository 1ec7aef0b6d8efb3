import { describe, expect, it } from 'vitest';
import { diffHashes, differingIndexes } from './hash-diff.ts';

const h = (n: number) => Uint8Array.from([n, n, n]);

describe('diffHashes', () => {
  it('sets bit i, least significant first, for each differing chunk', () => {
    const src = Array.from({ length: 11 }, (_, i) => h(i));
    const rep = src.map((x, i) => (i === 0 || i === 9 ? h(99) : x));
    const d = diffHashes(src, rep);
    expect(d.differingCount).toBe(2);
    expect([...d.differ]).toEqual([0b1, 0b10]);
    expect(differingIndexes(d.differ, 11)).toEqual([0, 9]);
  });

  it('counts chunks missing on one side as differing', () => {
    expect(diffHashes([h(1), h(2)], [h(1)]).differingCount).toBe(1);
  });
});
