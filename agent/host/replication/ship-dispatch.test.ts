import { describe, expect, it } from 'vitest';
import { nextShipState, stepOf, type ShipState } from './ship-dispatch.ts';

describe('ShipSegments frame table', () => {
  it('walks hello, then segments of start, chunks, end', () => {
    let s: ShipState = 'await-hello';
    for (const step of ['hello', 'start', 'chunk', 'chunk', 'end', 'start', 'end']) {
      s = nextShipState(s, step);
    }
    expect(s).toBe('between');
  });

  it.each([
    ['await-hello', 'start'],
    ['await-hello', 'chunk'],
    ['between', 'hello'],
    ['between', 'chunk'],
    ['between', 'end'],
    ['in-segment', 'start'],
    ['in-segment', 'hello'],
    ['await-hello', undefined],
    ['between', 'toString'],
  ] as const)('refuses %s → %s with SS_PROTOCOL', (state, step) => {
    expect(() => nextShipState(state, step)).toThrow(/unexpected frame/);
  });

  it('reads the oneof case from `step`, or from the field that is set', () => {
    expect(stepOf({ step: 'chunk', chunk: {} }, ['hello', 'chunk'])).toBe('chunk');
    expect(stepOf({ hello: {} }, ['hello', 'chunk'])).toBe('hello');
    expect(stepOf({ step: 'bogus' }, ['hello', 'chunk'])).toBeUndefined();
    expect(stepOf({}, ['hello'])).toBeUndefined();
  });
});
