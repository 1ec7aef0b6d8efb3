import { describe, expect, it } from 'vitest';
import { blockBuffer, checkBlock, fillBlock, seededRandom } from './pattern.ts';

const id = { seed: 42, disk: 1, offset: 65536 * 7, generation: 3 };

describe('pattern', () => {
  it('is reproducible and differs by every part of the identity', () => {
    const a = fillBlock(blockBuffer(4096), id);
    expect(fillBlock(blockBuffer(4096), id).equals(a)).toBe(true);
    for (const other of [
      { ...id, seed: 43 },
      { ...id, disk: 0 },
      { ...id, offset: id.offset + 4096 },
      { ...id, generation: 4 },
    ]) {
      expect(fillBlock(blockBuffer(4096), other).subarray(32).equals(a.subarray(32))).toBe(false);
    }
  });

  it('checks a block back: pattern with its generation, zeros, or bad with a reason', () => {
    const where = { seed: 42, disk: 1, offset: id.offset };
    expect(checkBlock(fillBlock(blockBuffer(4096), id), where)).toEqual({
      kind: 'pattern',
      generation: 3,
    });
    expect(checkBlock(Buffer.alloc(4096), where)).toEqual({ kind: 'zero' });
    const torn = fillBlock(blockBuffer(4096), id);
    torn[2000] = torn[2000]! ^ 1;
    expect(checkBlock(torn, where)).toMatchObject({ kind: 'bad', reason: 'torn or corrupt body' });
    const moved = fillBlock(blockBuffer(4096), id);
    expect(checkBlock(moved, { ...where, offset: 0 })).toMatchObject({ kind: 'bad' });
  });

  it('seeded random is reproducible', () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });
});
