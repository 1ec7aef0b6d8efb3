import { describe, expect, it } from 'vitest';
import type { Extent } from '../journal/types.ts';
import { checkSegment, segmentProblem, type IncomingSegment } from './segment-check.ts';

const point = { id: 'p', time: 0, type: 'crash-consistent', segment: 3 } as const;
const seg = (extents: Extent[]): IncomingSegment => ({ seq: 3, point, extents });
const e = (disk: number, offset: number, length: number): Extent => ({
  disk,
  offset,
  length,
  data: Buffer.alloc(length),
});
const sizes = [100, 50];

describe('segmentProblem', () => {
  it('accepts sorted, non-overlapping, in-range extents (and none)', () => {
    expect(segmentProblem(seg([]), sizes)).toBeUndefined();
    expect(segmentProblem(seg([e(0, 0, 10), e(0, 10, 90), e(1, 0, 50)]), sizes)).toBeUndefined();
    expect(segmentProblem(seg([{ disk: 1, offset: 5, length: 5, data: null }]), sizes)).toBe(
      undefined,
    );
  });

  it.each([
    ['overlap', [e(0, 0, 10), e(0, 9, 2)]],
    ['unsorted disks', [e(1, 0, 1), e(0, 0, 1)]],
    ['past the end', [e(1, 45, 6)]],
    ['unknown disk', [e(2, 0, 1)]],
    ['empty extent', [{ disk: 0, offset: 0, length: 0, data: null }]],
    ['short data', [{ disk: 0, offset: 0, length: 4, data: Buffer.alloc(3) }]],
  ])('refuses %s', (_name, extents) => {
    expect(segmentProblem(seg(extents as Extent[]), sizes)).toBeTypeOf('string');
  });

  it('refuses a point that seals another segment, as a protocol error', () => {
    const bad = { seq: 4, point, extents: [] };
    expect(() => checkSegment(bad, sizes)).toThrow(
      expect.objectContaining({ code: 'SS_PROTOCOL' }),
    );
  });
});
