import { describe, expect, it } from 'vitest';
import { exitCodeFor, SecondsiteError } from '../../common/errors/errors.ts';
import {
  actionAt,
  addAction,
  addVms,
  newPlan,
  parseStepName,
  planSteps,
  planVms,
  type PlanItem,
  type RecoveryPlan,
} from './recovery-plan.ts';

const NY = 'VMM-NewYork';
const CH = 'VMM-Chicago';

const item = (vm: string, source = 'GoldCloud1', target = 'GoldCloud2'): PlanItem => ({
  vm,
  sourceServer: NY,
  sourceCloud: source,
  targetServer: CH,
  targetCloud: target,
});
const ITEMS = [item('db1'), item('db2'), item('app1'), item('web1'), item('other', 'Silver')];

const empty = (): RecoveryPlan =>
  newPlan({ name: 'Shop', sourceCloud: `${NY}/GoldCloud1`, targetCloud: `${CH}/GoldCloud2` });

/** db in group 1 (a script before it), app in 2 (a manual action after it), web in 3. */
function threeGroups(): RecoveryPlan {
  let p = addVms(empty(), 1, ['db1', 'db2'], ITEMS);
  p = addAction(p, { group: 1, side: 'before', script: '/opt/dr/stop-writers.sh' });
  p = addVms(p, '2', ['app1'], ITEMS);
  p = addAction(p, { group: 2, side: 'after', manual: 'check the payment gateway' });
  p = addVms(p, 3, ['web1'], ITEMS);
  return addAction(p, {
    group: 3,
    side: 'after',
    script: '/opt/dr/smoke-test.sh',
    timeoutSeconds: '30',
  });
}

function refusal(fn: () => unknown): SecondsiteError {
  try {
    fn();
  } catch (e) {
    if (e instanceof SecondsiteError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('recovery plan: building', () => {
  it('builds three ordered groups with their VMs and actions', () => {
    const p = threeGroups();
    expect(p.groups).toEqual([
      {
        group: 1,
        vms: ['db1', 'db2'],
        before: [{ kind: 'script', path: '/opt/dr/stop-writers.sh', timeoutSeconds: 600 }],
        after: [],
      },
      {
        group: 2,
        vms: ['app1'],
        before: [],
        after: [{ kind: 'manual', text: 'check the payment gateway' }],
      },
      {
        group: 3,
        vms: ['web1'],
        before: [],
        after: [{ kind: 'script', path: '/opt/dr/smoke-test.sh', timeoutSeconds: 30 }],
      },
    ]);
    expect(planVms(p)).toEqual(['db1', 'db2', 'app1', 'web1']);
  });

  it('creates only the next group: a gap, 0 or a fraction is refused naming "group"', () => {
    for (const g of [2, 0, 1.5, 'x']) {
      const e = refusal(() => addVms(empty(), g, ['db1'], ITEMS));
      expect(e.details['field']).toBe('group');
      expect(exitCodeFor(e)).toBe(2);
    }
    expect(refusal(() => addVms(threeGroups(), 5, ['db1'], ITEMS)).message).toMatch(
      /use 1-3, or 4 for a new group/,
    );
    expect(addAction(threeGroups(), { group: 4, side: 'before', manual: 'x' }).groups).toHaveLength(
      4,
    );
  });

  it('keeps a VM in one group only; adding it to its own group again changes nothing', () => {
    const p = threeGroups();
    const e = refusal(() => addVms(p, 3, ['db2'], ITEMS));
    expect(e.details).toMatchObject({ field: 'vms', vm: 'db2', group: 1 });
    expect(addVms(p, 1, ['db1', 'db1'], ITEMS).groups[0]!.vms).toEqual(['db1', 'db2']);
  });

  it('accepts only replicated items of the plan’s cloud pair', () => {
    expect(refusal(() => addVms(empty(), 1, ['ghost'], ITEMS)).message).toMatch(
      /ghost is not a replicated VM/,
    );
    const e = refusal(() => addVms(empty(), 1, ['other'], ITEMS));
    expect(e.details).toMatchObject({ field: 'vms', vm: 'other' });
    expect(e.message).toMatch(/VMM-NewYork\/Silver/);
    expect(refusal(() => addVms(empty(), 1, [], ITEMS)).details['field']).toBe('vms');
  });

  it('refuses relative scripts, both or neither kind, bad timeouts and bad sides', () => {
    const p = empty();
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ script: 'stop.sh' }, 'script'],
      [{ script: '/a', manual: 'b' }, 'script'],
      [{}, 'script'],
      [{ manual: '   ' }, 'manual'],
      [{ manual: 'x', timeoutSeconds: 5 }, 'timeoutSeconds'],
      [{ script: '/a', timeoutSeconds: 0 }, 'timeoutSeconds'],
      [{ script: '/a', timeoutSeconds: '1.5' }, 'timeoutSeconds'],
    ];
    for (const [input, field] of cases) {
      const e = refusal(() => addAction(p, { group: 1, side: 'before', ...input }));
      expect(e.details['field'], JSON.stringify(input)).toBe(field);
    }
    expect(
      refusal(() => addAction(p, { group: 1, side: 'during', manual: 'x' })).details['field'],
    ).toBe('side');
  });

  it('refuses bad names and a plan onto its own cloud', () => {
    expect(
      refusal(() => newPlan({ name: 'a/b', sourceCloud: `${NY}/A`, targetCloud: `${CH}/B` }))
        .details['field'],
    ).toBe('name');
    expect(
      refusal(() => newPlan({ name: 'P', sourceCloud: 'GoldCloud1', targetCloud: `${CH}/B` }))
        .details['field'],
    ).toBe('sourceCloud');
    expect(
      refusal(() => newPlan({ name: 'P', sourceCloud: `${NY}/A`, targetCloud: `vmm-newyork/A` }))
        .details['field'],
    ).toBe('targetCloud');
  });
});

describe('recovery plan: steps of an operation', () => {
  it('runs before-actions, the group, after-actions, group after group', () => {
    expect(planSteps(threeGroups(), 'planned')).toEqual([
      { name: 'before:1:1' },
      { name: 'group:1' },
      { name: 'group:2' },
      {
        name: 'after:2:1',
        kind: 'manual',
        instruction: 'after group 2: check the payment gateway',
      },
      { name: 'group:3' },
      { name: 'after:3:1' },
    ]);
  });

  it('maps every step name back to its action or group', () => {
    const p = threeGroups();
    for (const s of planSteps(p, 'test')) {
      const step = parseStepName(s.name);
      expect(step, s.name).toBeDefined();
      if (step!.kind === 'action') expect(actionAt(p, step!), s.name).toBeDefined();
    }
    expect(actionAt(p, parseStepName('before:1:1')!)).toMatchObject({ kind: 'script' });
    expect(actionAt(p, parseStepName('before:2:1')!)).toBeUndefined();
    expect(parseStepName('group:x')).toBeUndefined();
  });

  it('walks only the groups’ VMs for commit, reverse and cleanup-test', () => {
    for (const op of ['commit', 'reverse', 'cleanup-test'] as const) {
      expect(planSteps(threeGroups(), op).map((s) => s.name)).toEqual([
        'group:1',
        'group:2',
        'group:3',
      ]);
    }
  });

  it('keeps a group of actions only, and refuses a plan without VMs', () => {
    const p = addAction(threeGroups(), { group: 4, side: 'before', manual: 'tell the users' });
    expect(
      planSteps(p, 'unplanned')
        .map((s) => s.name)
        .slice(-1),
    ).toEqual(['before:4:1']);
    expect(refusal(() => planSteps(empty(), 'test')).code).toBe('SS_CONFLICT');
  });
});
