import { describe, expect, it } from 'vitest';
import { LeapClock } from './clock.ts';

describe('LeapClock', () => {
  it('follows the wall clock, stands at a leap until the wall clock passes it, never goes back', () => {
    let wall = 1_000;
    const c = new LeapClock(() => wall);
    expect(c.now()).toBe(1_000);
    wall = 1_500;
    expect(c.now()).toBe(1_500);
    c.leapTo(10_000);
    expect(c.now()).toBe(10_000);
    wall = 9_000;
    expect(c.now()).toBe(10_000);
    c.leapTo(5_000); // already past: no effect
    expect(c.now()).toBe(10_000);
    wall = 12_000;
    expect(c.now()).toBe(12_000);
  });
});
