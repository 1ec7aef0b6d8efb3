/**
 * Frame validity for ShipSegments (pure): which oneof step may come in which state. The server
 * dispatches each incoming frame through `nextShipState` before its handler runs, so a handler
 * never sees a frame out of order; any other frame ends the stream with SS_PROTOCOL.
 *
 *   await-hello  --hello-->  between  --start-->  in-segment  --chunk-->  in-segment
 *                                ^                     |
 *                                +-------- end --------+
 */
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { ShipStep } from './wire-types.ts';

export type ShipState = 'await-hello' | 'between' | 'in-segment';

const TRANSITIONS: Readonly<Record<ShipState, Partial<Record<ShipStep, ShipState>>>> =
  Object.freeze({
    'await-hello': { hello: 'between' },
    between: { start: 'in-segment' },
    'in-segment': { chunk: 'in-segment', end: 'between' },
  });

/** The state after `step`, or SS_PROTOCOL naming what was expected. */
export function nextShipState(state: ShipState, step: string | undefined): ShipState {
  const row = TRANSITIONS[state];
  // hasOwn: a step named like an Object.prototype member ('toString') is not a transition.
  const next = step !== undefined && Object.hasOwn(row, step) ? row[step as ShipStep] : undefined;
  if (next === undefined) {
    const expected = Object.keys(TRANSITIONS[state]).join(' or ');
    throw new SecondsiteError(
      'SS_PROTOCOL',
      `unexpected frame '${step ?? 'empty'}' in state ${state}; expected ${expected}`,
      { state, step: step ?? null },
    );
  }
  return next;
}

/** The oneof case a decoded frame carries (the loader sets `step`; a hand-built one may not). */
export function stepOf<K extends string>(frame: object, cases: readonly K[]): K | undefined {
  const named = (frame as { step?: unknown }).step;
  if (typeof named === 'string') return cases.find((c) => c === named);
  return cases.find((c) => (frame as Record<string, unknown>)[c] != null);
}
