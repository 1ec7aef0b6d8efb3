import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.ts';

describe('reconnect backoff', () => {
  const opts = { baseMs: 100, capMs: 1000 };
  it('grows exponentially, then stays at the cap', () => {
    expect([0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, 1, opts))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
  });
  it('jitters between half and all of the delay', () => {
    expect(backoffDelay(3, 0, opts)).toBe(400);
    expect(backoffDelay(3, 0.5, opts)).toBe(600);
    expect(backoffDelay(50, 0, opts)).toBe(500);
  });
});
