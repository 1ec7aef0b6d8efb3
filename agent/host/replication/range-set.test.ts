import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../test/helpers/seeded-random.ts';
import { RangeSet } from './range-set.ts';

describe('RangeSet', () => {
  it('returns only the parts not seen before and merges what touches', () => {
    const r = new RangeSet();
    expect(r.addNew(0, 10, 10)).toEqual([[10, 10]]);
    expect(r.addNew(0, 30, 10)).toEqual([[30, 10]]);
    expect(r.addNew(0, 5, 40)).toEqual([
      [5, 5],
      [20, 10],
      [40, 5],
    ]);
    expect(r.size).toBe(1);
    expect(r.addNew(0, 5, 40)).toEqual([]);
    expect(r.addNew(0, 45, 5)).toEqual([[45, 5]]); // adjacent: merged
    expect(r.size).toBe(1);
    expect(r.addNew(1, 5, 5)).toEqual([[5, 5]]); // another disk
    expect(r.size).toBe(2);
  });

  it('matches a per-byte model on random ranges', () => {
    const seed = Number(process.env['SEED'] ?? Date.now() % 1e9);
    console.log(`range set: SEED=${seed}`);
    const rnd = seededRandom(seed);
    const r = new RangeSet();
    const seen = new Uint8Array(4096);
    for (let n = 0; n < 3000; n++) {
      const offset = rnd.int(4000);
      const length = 1 + rnd.int(96);
      const fresh = r.addNew(0, offset, length);
      const expected: Array<[number, number]> = [];
      for (let b = offset; b < offset + length; b++) {
        if (seen[b]) continue;
        const last = expected.at(-1);
        if (last && last[0] + last[1] === b) last[1]++;
        else expected.push([b, 1]);
        seen[b] = 1;
      }
      expect(fresh).toEqual(expected);
    }
  });
});
