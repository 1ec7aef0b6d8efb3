import { describe, expect, it } from 'vitest';
import { SecondsiteError } from '../../common/errors/errors.ts';
import {
  ITEM_EVENTS,
  ITEM_STATES,
  ITEM_TRANSITIONS,
  canTransition,
  statesAllowing,
  transition,
  type ItemEvent,
  type ItemState,
} from './item-state.ts';

/** Every legal transition, written out: the table must match this list exactly. */
const LEGAL: [ItemState, ItemEvent, ItemState][] = [
  ['enabling', 'initial-started', 'initial-replication'],
  ['enabling', 'enable-failed', 'disabled'],
  ['enabling', 'disable', 'disabled'],
  ['initial-replication', 'finalized', 'protected'],
  ['initial-replication', 'enable-failed', 'disabled'],
  ['initial-replication', 'disable', 'disabled'],
  ['protected', 'pause', 'paused'],
  ['protected', 'resync-needed', 'resync-required'],
  ['protected', 'resync', 'resynchronizing'],
  ['protected', 'failover-planned', 'failed-over'],
  ['protected', 'failover-unplanned', 'failed-over'],
  ['protected', 'disable', 'disabled'],
  ['paused', 'resume', 'protected'],
  ['paused', 'resync-needed', 'resync-required'],
  ['paused', 'failover-unplanned', 'failed-over'],
  ['paused', 'disable', 'disabled'],
  ['resync-required', 'resync', 'resynchronizing'],
  ['resync-required', 'failover-unplanned', 'failed-over'],
  ['resync-required', 'disable', 'disabled'],
  ['resynchronizing', 'resync-finished', 'protected'],
  ['resynchronizing', 'resync-needed', 'resync-required'],
  ['resynchronizing', 'failover-unplanned', 'failed-over'],
  ['resynchronizing', 'disable', 'disabled'],
  ['failed-over', 'change-point', 'failed-over'],
  ['failed-over', 'commit', 'committed'],
  ['failed-over', 'disable', 'disabled'],
  ['committed', 'reverse-in-sync', 'protected'],
  ['committed', 'reverse-resync', 'resynchronizing'],
  ['committed', 'disable', 'disabled'],
  ['disabled', 'enable', 'enabling'],
];

describe('replicated item state machine', () => {
  it.each(LEGAL)('%s --%s--> %s', (from, event, to) => {
    expect(transition(from, event)).toBe(to);
  });

  it('allows nothing beyond the listed transitions', () => {
    const listed = new Set(LEGAL.map(([s, e]) => `${s}|${e}`));
    for (const s of ITEM_STATES) {
      for (const e of ITEM_EVENTS) {
        expect(canTransition(s, e), `${s} ${e}`).toBe(listed.has(`${s}|${e}`));
      }
    }
    expect(Object.keys(ITEM_TRANSITIONS).sort()).toEqual([...ITEM_STATES].sort());
  });

  it('walks enable → protected → planned failover → commit → reverse → protected', () => {
    const events: ItemEvent[] = [
      'initial-started',
      'finalized',
      'failover-planned',
      'commit',
      'reverse-in-sync',
    ];
    expect(events.reduce<ItemState>((s, e) => transition(s, e), 'enabling')).toBe('protected');
  });

  it.each([
    ['protected', 'commit'],
    ['enabling', 'pause'],
    ['paused', 'failover-planned'],
    ['resync-required', 'resume'],
    ['disabled', 'disable'],
    ['committed', 'change-point'],
    ['failed-over', 'failover-unplanned'],
  ] as [ItemState, ItemEvent][])('refuses %s --%s--> with SS_CONFLICT', (state, event) => {
    let caught: unknown;
    try {
      transition(state, event, 'VMM-NewYork/VM1');
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(SecondsiteError);
    const e = caught as SecondsiteError;
    expect(e.code).toBe('SS_CONFLICT');
    expect(e.message).toContain(`cannot ${event} VMM-NewYork/VM1: it is ${state}`);
    expect(e.details).toMatchObject({
      state,
      event,
      vm: 'VMM-NewYork/VM1',
      allowedFrom: statesAllowing(event),
    });
  });

  it('names the states an event is allowed from', () => {
    expect(statesAllowing('failover-planned')).toEqual(['protected']);
    expect(statesAllowing('failover-unplanned')).toEqual([
      'protected',
      'paused',
      'resync-required',
      'resynchronizing',
    ]);
    expect(() => transition('paused', 'failover-planned')).toThrow(
      'cannot failover-planned the item: it is paused; allowed only when protected',
    );
  });
});
