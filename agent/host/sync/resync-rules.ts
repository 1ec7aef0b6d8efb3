/**
 * What a replicated VM needs before journal shipping can (re)start: the resync decision table
 * (pure; STYLE.md rule 8, DRBD's named rules). Rules are tried in order; the first whose
 * `when` holds decides, and the engines log its name. Each rule says in `why` what it knows.
 *
 * Seq facts: the replica has applied segments up to `replicaLastApplied`; the source still
 * holds sealed segments from `sourceOldestUnshipped` (undefined: none sealed) and writes
 * segment `sourceActiveSeq` now. Shipping can simply continue when the replica's next segment
 * (lastApplied + 1) is one the source still has or is writing.
 */

export type ResyncScope = 'all' | 'dirty';

export type SyncAction =
  | { readonly kind: 'full-copy'; readonly resume: boolean }
  | { readonly kind: 'hash-compare'; readonly scope: ResyncScope }
  | { readonly kind: 'ship-journal' }
  | { readonly kind: 'nothing' };

export interface SyncFacts {
  /** The target has replica disks and a recovery store for the VM. */
  readonly replicaExists: boolean;
  /** Every replica disk has the source disk's size. */
  readonly replicaSizesMatch: boolean;
  /** An initial copy began and has not finished (its watermark exists on the target). */
  readonly copyInProgress: boolean;
  /** The user seeds the replica from existing disks (onboarding, offline seed). */
  readonly onboardingExistingReplica: boolean;
  /** Roles were just swapped: after which kind of failover. */
  readonly reverseAfter?: 'planned-failover' | 'unplanned-failover' | undefined;
  /** A resync was begun and not finished; its scope, to resume it as it was. */
  readonly resyncInProgress?: ResyncScope | undefined;
  /** The target's store was lost or cannot prove what its disks hold. */
  readonly replicaUnclean: boolean;
  /** The source's journal: journaling, or overflowed to the dirty bitmap. */
  readonly journalState: 'journaling' | 'resync-required';
  /** The source host went down with the journal open and cannot trust it (journal-state.ts). */
  readonly journalUntrusted: boolean;
  readonly replicaLastApplied: number;
  readonly sourceOldestUnshipped: number | undefined;
  readonly sourceActiveSeq: number;
}

export interface SyncRule {
  readonly name: string;
  readonly why: string;
  readonly when: (f: SyncFacts) => boolean;
  readonly action: (f: SyncFacts) => SyncAction;
}

export interface SyncDecision {
  readonly rule: string;
  readonly why: string;
  readonly action: SyncAction;
}

const FULL: SyncAction = { kind: 'full-copy', resume: false };
const ALL: SyncAction = { kind: 'hash-compare', scope: 'all' };

/** The replica's next segment is one the source still holds (sealed or active). */
function journalCovers(f: SyncFacts): boolean {
  const next = f.replicaLastApplied + 1;
  const oldest = f.sourceOldestUnshipped ?? f.sourceActiveSeq;
  return next >= oldest && next <= f.sourceActiveSeq;
}

export const SYNC_RULES: readonly SyncRule[] = Object.freeze<SyncRule[]>([
  {
    name: 'onboard-existing-replica',
    why: 'disks seeded by hand may differ anywhere',
    when: (f) => f.onboardingExistingReplica && f.replicaExists && f.replicaSizesMatch,
    action: () => ALL,
  },
  {
    name: 'no-replica',
    why: 'nothing to compare against',
    when: (f) => !f.replicaExists,
    action: () => FULL,
  },
  {
    name: 'replica-size-mismatch',
    why: 'replica disks of other sizes are recreated and copied whole',
    when: (f) => !f.replicaSizesMatch,
    action: () => FULL,
  },
  {
    name: 'copy-interrupted',
    why: 'the copy resumes at the watermark if the journal kept every write since it began',
    when: (f) => f.copyInProgress,
    action: (f) =>
      f.journalState === 'journaling' && !f.journalUntrusted
        ? { kind: 'full-copy', resume: true }
        : ALL,
  },
  {
    name: 'reverse-after-planned-failover',
    why: 'the last segment was shipped before the swap: both sides hold the same bytes',
    when: (f) => f.reverseAfter === 'planned-failover',
    action: () => ({ kind: 'nothing' }),
  },
  {
    name: 'reverse-after-unplanned-failover',
    why: 'the old primary has writes the replica never got, and the replica rolled back',
    when: (f) => f.reverseAfter === 'unplanned-failover',
    action: () => ALL,
  },
  {
    name: 'resync-interrupted',
    why: 'a resync was cut short: it resumes from its cursor with its scope',
    when: (f) => f.resyncInProgress !== undefined,
    action: (f) => ({ kind: 'hash-compare', scope: f.resyncInProgress ?? 'all' }),
  },
  {
    name: 'replica-unclean',
    why: 'the replica cannot prove which point its disks are at',
    when: (f) => f.replicaUnclean,
    action: () => ALL,
  },
  {
    name: 'journal-untrusted',
    why: 'the source crashed with its journal open: the disks may hold writes it lost',
    when: (f) => f.journalUntrusted,
    action: () => ALL,
  },
  {
    name: 'journal-overflow',
    why: 'the dirty bitmap holds every block changed since the last shipped segment',
    when: (f) =>
      f.journalState === 'resync-required' &&
      f.replicaLastApplied + 1 >= (f.sourceOldestUnshipped ?? f.replicaLastApplied + 1),
    action: () => ({ kind: 'hash-compare', scope: 'dirty' }),
  },
  {
    name: 'journal-overflow-replica-behind',
    why: 'the replica lacks segments older than the bitmap: it cannot narrow the compare',
    when: (f) => f.journalState === 'resync-required',
    action: () => ALL,
  },
  {
    name: 'up-to-date',
    why: 'the replica has every sealed segment',
    when: (f) =>
      f.sourceOldestUnshipped === undefined && f.replicaLastApplied + 1 === f.sourceActiveSeq,
    action: () => ({ kind: 'nothing' }),
  },
  {
    name: 'journal-continues',
    why: 'the source still holds the segment the replica needs next',
    when: journalCovers,
    action: () => ({ kind: 'ship-journal' }),
  },
  {
    name: 'journal-gap',
    why: 'segments the replica needs are gone (or it is ahead of the source): compare all',
    when: () => true,
    action: () => ALL,
  },
]);

export function decideSync(f: SyncFacts, rules: readonly SyncRule[] = SYNC_RULES): SyncDecision {
  for (const rule of rules) {
    if (rule.when(f)) return { rule: rule.name, why: rule.why, action: rule.action(f) };
  }
  throw new Error('the sync rule table has no catch-all rule');
}
