/** Time comes from a Clock so that domain code and tests never read the wall clock directly. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = Object.freeze({ now: () => Date.now() });

/** A clock for tests: time moves only when told to. */
export class FakeClock implements Clock {
  constructor(private ms = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
  set(ms: number): void {
    this.ms = ms;
  }
}

/**
 * A clock for tests of real servers whose certificates the wall clock checks (TLS cannot be
 * given a clock): it reads the wall clock, except that a test may make it leap ahead to a
 * moment (`leapTo`); it then stands at that moment until the wall clock catches up, and
 * follows the wall clock again. It never goes back, and is never behind the wall clock, so a
 * certificate it dates (backdated 5 min by the signer) is valid by the wall clock too.
 */
export class LeapClock implements Clock {
  private floor = 0;
  constructor(private readonly wall: () => number = Date.now) {}
  now(): number {
    return Math.max(this.wall(), this.floor);
  }
  /** Stands at `ms` until the wall clock passes it; a moment already past changes nothing. */
  leapTo(ms: number): void {
    this.floor = Math.max(this.floor, ms);
  }
}
