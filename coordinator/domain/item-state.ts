/**
 * A replicated item's state machine (R14, R20, R21, R24–R27). Pure: `transition` returns the
 * next state or refuses with SS_CONFLICT naming the states the event is allowed from.
 *
 *   enabling ──initial-started──▶ initial-replication ──finalized──▶ protected
 *   protected ──pause──▶ paused ──resume──▶ protected        (paused still journals, R20)
 *   protected | paused | resynchronizing ──resync-needed──▶ resync-required
 *   protected | resync-required ──resync──▶ resynchronizing ──resync-finished──▶ protected
 *   protected ──failover-planned──▶ failed-over              (needs a working replication)
 *   protected | paused | resync-required | resynchronizing ──failover-unplanned──▶ failed-over
 *   failed-over ──change-point──▶ failed-over ──commit──▶ committed
 *   committed ──reverse-in-sync──▶ protected                 (after planned: nothing differs)
 *   committed ──reverse-resync──▶ resynchronizing            (after unplanned: compare, R27)
 *   enabling | initial-replication ──enable-failed──▶ disabled
 *   any but disabled ──disable──▶ disabled ──enable──▶ enabling
 *
 * Why unplanned failover is allowed from broken states: it exists for the day things are broken;
 * the replica's retained points stay readable through a resync (the recovery store keeps the
 * last good point). A test failover is not a state: replication continues underneath (R23).
 */
import { SecondsiteError } from '../../common/errors/errors.ts';

export const ITEM_STATES = [
  'enabling',
  'initial-replication',
  'protected',
  'paused',
  'resync-required',
  'resynchronizing',
  'failed-over',
  'committed',
  'disabled',
] as const;
export type ItemState = (typeof ITEM_STATES)[number];

export const ITEM_EVENTS = [
  'initial-started',
  'finalized',
  'enable-failed',
  'pause',
  'resume',
  'resync-needed',
  'resync',
  'resync-finished',
  'failover-planned',
  'failover-unplanned',
  'change-point',
  'commit',
  'reverse-in-sync',
  'reverse-resync',
  'disable',
  'enable',
] as const;
export type ItemEvent = (typeof ITEM_EVENTS)[number];

type Table = Readonly<Record<ItemState, Readonly<Partial<Record<ItemEvent, ItemState>>>>>;

const DISABLE = { disable: 'disabled' } as const;

/** The transitions table; a missing entry is an illegal transition. */
export const ITEM_TRANSITIONS: Table = Object.freeze({
  enabling: { 'initial-started': 'initial-replication', 'enable-failed': 'disabled', ...DISABLE },
  'initial-replication': { finalized: 'protected', 'enable-failed': 'disabled', ...DISABLE },
  protected: {
    pause: 'paused',
    'resync-needed': 'resync-required',
    resync: 'resynchronizing',
    'failover-planned': 'failed-over',
    'failover-unplanned': 'failed-over',
    ...DISABLE,
  },
  paused: {
    resume: 'protected',
    'resync-needed': 'resync-required',
    'failover-unplanned': 'failed-over',
    ...DISABLE,
  },
  'resync-required': {
    resync: 'resynchronizing',
    'failover-unplanned': 'failed-over',
    ...DISABLE,
  },
  resynchronizing: {
    'resync-finished': 'protected',
    'resync-needed': 'resync-required',
    'failover-unplanned': 'failed-over',
    ...DISABLE,
  },
  'failed-over': { 'change-point': 'failed-over', commit: 'committed', ...DISABLE },
  committed: {
    'reverse-in-sync': 'protected',
    'reverse-resync': 'resynchronizing',
    ...DISABLE,
  },
  disabled: { enable: 'enabling' },
});

export function canTransition(state: ItemState, event: ItemEvent): boolean {
  return ITEM_TRANSITIONS[state][event] !== undefined;
}

/** The states from which `event` is allowed, in ITEM_STATES order (for messages). */
export function statesAllowing(event: ItemEvent): readonly ItemState[] {
  return ITEM_STATES.filter((s) => canTransition(s, event));
}

/** The next state, or SS_CONFLICT saying which states would have allowed the event. */
export function transition(state: ItemState, event: ItemEvent, vm?: string): ItemState {
  const next = ITEM_TRANSITIONS[state][event];
  if (next !== undefined) return next;
  const allowed = statesAllowing(event);
  const who = vm === undefined ? 'the item' : vm;
  throw new SecondsiteError(
    'SS_CONFLICT',
    `cannot ${event} ${who}: it is ${state}; allowed only when ${allowed.join(', ')}`,
    { state, event, allowedFrom: allowed, ...(vm === undefined ? {} : { vm }) },
  );
}

/** States in which delta cycles are expected to run (health counts missed cycles in these). */
export function cyclesExpected(state: ItemState): boolean {
  return state === 'protected';
}
