import { describe, expect, it } from 'vitest';
import { SYNC_RULES, decideSync, type SyncFacts } from './resync-rules.ts';

/** A healthy, caught-up pair: journaling, the replica has applied everything sealed. */
const base: SyncFacts = {
  replicaExists: true,
  replicaSizesMatch: true,
  copyInProgress: false,
  onboardingExistingReplica: false,
  replicaUnclean: false,
  journalState: 'journaling',
  journalUntrusted: false,
  replicaLastApplied: 9,
  sourceOldestUnshipped: undefined,
  sourceActiveSeq: 10,
};

const rows: Array<[string, Partial<SyncFacts>, unknown]> = [
  [
    'onboard-existing-replica',
    { onboardingExistingReplica: true },
    { kind: 'hash-compare', scope: 'all' },
  ],
  ['no-replica', { replicaExists: false }, { kind: 'full-copy', resume: false }],
  ['replica-size-mismatch', { replicaSizesMatch: false }, { kind: 'full-copy', resume: false }],
  ['copy-interrupted', { copyInProgress: true }, { kind: 'full-copy', resume: true }],
  [
    'copy-interrupted',
    { copyInProgress: true, journalState: 'resync-required' },
    { kind: 'hash-compare', scope: 'all' },
  ],
  ['reverse-after-planned-failover', { reverseAfter: 'planned-failover' }, { kind: 'nothing' }],
  [
    'reverse-after-unplanned-failover',
    { reverseAfter: 'unplanned-failover' },
    { kind: 'hash-compare', scope: 'all' },
  ],
  ['resync-interrupted', { resyncInProgress: 'dirty' }, { kind: 'hash-compare', scope: 'dirty' }],
  ['replica-unclean', { replicaUnclean: true }, { kind: 'hash-compare', scope: 'all' }],
  ['journal-untrusted', { journalUntrusted: true }, { kind: 'hash-compare', scope: 'all' }],
  [
    'journal-overflow',
    { journalState: 'resync-required', sourceOldestUnshipped: 10 },
    { kind: 'hash-compare', scope: 'dirty' },
  ],
  [
    'journal-overflow-replica-behind',
    { journalState: 'resync-required', sourceOldestUnshipped: 12 },
    { kind: 'hash-compare', scope: 'all' },
  ],
  ['up-to-date', {}, { kind: 'nothing' }],
  [
    'journal-continues',
    { sourceOldestUnshipped: 8, sourceActiveSeq: 12 },
    { kind: 'ship-journal' },
  ],
  [
    'journal-continues',
    { sourceOldestUnshipped: 10, sourceActiveSeq: 12 },
    { kind: 'ship-journal' },
  ],
  [
    'journal-gap',
    { sourceOldestUnshipped: 11, sourceActiveSeq: 12 },
    { kind: 'hash-compare', scope: 'all' },
  ],
  ['journal-gap', { replicaLastApplied: 20 }, { kind: 'hash-compare', scope: 'all' }],
];

describe('decideSync', () => {
  it.each(rows)('%s fires for %j', (rule, facts, action) => {
    const d = decideSync({ ...base, ...facts });
    expect(d.rule).toBe(rule);
    expect(d.action).toEqual(action);
    expect(d.why.length).toBeGreaterThan(0);
  });

  it('has a row above for every rule, and unique names', () => {
    const names = SYNC_RULES.map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
    expect(new Set(rows.map((r) => r[0]))).toEqual(new Set(names));
  });

  it('puts onboarding before no-replica only when the replica fits', () => {
    const d = decideSync({ ...base, onboardingExistingReplica: true, replicaSizesMatch: false });
    expect(d.rule).toBe('replica-size-mismatch');
  });
});
