import { describe, expect, it } from 'vitest';
import {
  alignToChunks,
  batches,
  bytesBefore,
  fromDirtyMap,
  rangesFrom,
  validChunkBytes,
  wholeDisks,
} from './chunk-grid.ts';

const MiB = 1 << 20;

describe('chunk grid', () => {
  it('widens dirty 64 KiB blocks to whole chunks, merges and clips to the disk', () => {
    const dirty = fromDirtyMap(
      new Map([
        [
          0,
          [
            [65536, 65536],
            [MiB + 4096, 4096],
            [5 * MiB, 65536],
          ] as Array<[number, number]>,
        ],
        [1, [[3 * MiB - 10, 10]] as Array<[number, number]>],
      ]),
    );
    expect(alignToChunks(dirty, [5.5 * MiB, 3 * MiB - 5], MiB)).toEqual([
      { disk: 0, offset: 0, length: 2 * MiB },
      { disk: 0, offset: 5 * MiB, length: 0.5 * MiB },
      { disk: 1, offset: 2 * MiB, length: MiB - 5 },
    ]);
  });

  it('drops ranges of unknown disks and empty ones', () => {
    expect(
      alignToChunks(
        [
          { disk: 3, offset: 0, length: 9 },
          { disk: 0, offset: 0, length: 0 },
        ],
        [MiB],
        MiB,
      ),
    ).toEqual([]);
  });

  it('resumes from a cursor and counts progress', () => {
    const all = wholeDisks([4 * MiB, 0, 2 * MiB]);
    expect(all).toHaveLength(2);
    const rest = rangesFrom(all, { disk: 0, offset: 3 * MiB });
    expect(rest).toEqual([
      { disk: 0, offset: 3 * MiB, length: MiB },
      { disk: 2, offset: 0, length: 2 * MiB },
    ]);
    expect(bytesBefore(all, { disk: 0, offset: 3 * MiB })).toBe(3 * MiB);
    expect(bytesBefore(all, { disk: 2, offset: MiB })).toBe(5 * MiB);
  });

  it('cuts batches on the grid with a short tail', () => {
    const out = [...batches([{ disk: 0, offset: MiB, length: 5 * MiB + 7 }], MiB, 2)];
    expect(out.map((b) => [b.offset / MiB, b.length])).toEqual([
      [1, 2 * MiB],
      [3, 2 * MiB],
      [5, MiB + 7],
    ]);
  });

  it('accepts powers of two from 4 KiB to 4 MiB', () => {
    expect([4096, MiB, 4 * MiB].every(validChunkBytes)).toBe(true);
    expect([2048, 8 * MiB, 3 * MiB, 1.5].some(validChunkBytes)).toBe(false);
  });
});
