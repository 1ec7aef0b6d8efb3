import { describe, expect, it } from 'vitest';
import { isAllZero } from './all-zero.ts';

describe('isAllZero', () => {
  it('is true for empty and zero buffers of any length, across slice boundaries', () => {
    expect(isAllZero(Buffer.alloc(0))).toBe(true);
    expect(isAllZero(Buffer.alloc(1))).toBe(true);
    expect(isAllZero(Buffer.alloc(3 * 1024 * 1024 + 5))).toBe(true);
  });

  it('finds one non-zero byte anywhere, including the last of a slice and of the buffer', () => {
    const size = 2 * 1024 * 1024 + 7;
    for (const at of [0, 1024 * 1024 - 1, 1024 * 1024, size - 1]) {
      const b = Buffer.alloc(size);
      b[at] = 1;
      expect(isAllZero(b), `byte ${at}`).toBe(false);
    }
  });
});
