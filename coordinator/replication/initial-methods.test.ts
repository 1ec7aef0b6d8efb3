/** The pure decisions of offline, scheduled and onboarding initial replication (issue 8). */
import { describe, expect, it } from 'vitest';
import {
  applyEvent,
  isExistingReplica,
  itemView,
  newItem,
  scheduledStartDue,
} from '../domain/protection.ts';
import { enablePlan } from './protection-jobs.ts';

const base = {
  vaultId: 'v',
  vm: 'VM1',
  policy: 'p',
  sourceServer: 'A',
  sourceCloud: 'C1',
  sourceHost: 'h1',
  targetServer: 'B',
  targetCloud: 'C2',
  epoch: 1,
  now: 1000,
};

describe('enablePlan', () => {
  it('network and scheduled: place, pair the replica, pair the primary', () => {
    expect(enablePlan({ vaultId: 'v', vms: ['VM1'] }, 'VM1').map((s) => s.name)).toEqual([
      'place:VM1',
      'pair-replica:VM1',
      'pair-primary:VM1',
    ]);
  });
  it('offline: export, a manual carry step with the folders, import, seed', () => {
    const plan = enablePlan(
      { vaultId: 'v', vms: ['VM1'], offline: { exportPath: '/exp', importPath: '/imp' } },
      'VM1',
    );
    expect(plan.map((s) => s.name)).toEqual([
      'place:VM1',
      'pair-replica:VM1',
      'pair-primary:VM1',
      'export:VM1',
      'carry:VM1',
      'import:VM1',
      'seed:VM1',
    ]);
    const carry = plan[4]!;
    expect(carry.kind).toBe('manual');
    expect(carry.instruction).toContain('/exp/VM1');
    expect(carry.instruction).toContain('/imp');
    expect(carry.instruction).toContain('job resume');
  });
  it('offline with one folder for both: nothing to carry', () => {
    const plan = enablePlan(
      { vaultId: 'v', vms: ['VM1'], offline: { exportPath: '/s', importPath: '/s' } },
      'VM1',
    );
    expect(plan.some((s) => s.kind === 'manual')).toBe(false);
    expect(plan.map((s) => s.name)).toContain('import:VM1');
  });
});

describe('scheduledStartDue', () => {
  const waiting = applyEvent(newItem({ ...base, initialStartsAt: 5000 }), 'initial-started', 1000);
  it('is due at the time, not before, once', () => {
    expect(scheduledStartDue(waiting, 4999)).toBe(false);
    expect(scheduledStartDue(waiting, 5000)).toBe(true);
    expect(scheduledStartDue({ ...waiting, initialStart: { at: 5000, started: true } }, 9000)).toBe(
      false,
    );
  });
  it('only while the item is in initial replication, and only when scheduled', () => {
    expect(scheduledStartDue({ ...waiting, state: 'paused' }, 9000)).toBe(false);
    expect(scheduledStartDue(applyEvent(newItem(base), 'initial-started', 1), 9000)).toBe(false);
  });
  it('the item shows when it starts, before any byte is copied', () => {
    const v = itemView(waiting, '5m', 2000);
    expect(v.initialReplication).toEqual({
      bytesDone: 0,
      bytesTotal: 0,
      startsAt: new Date(5000).toISOString(),
    });
    expect(
      itemView(applyEvent(newItem(base), 'initial-started', 1), '5m', 2).initialReplication,
    ).toBeNull();
  });
  it('an offline item shows what the administrator must do', () => {
    const item = { ...waiting, initialStart: null, offline: { exportId: 'x', waiting: 'copy it' } };
    expect(itemView(item, '5m', 2000).initialReplication).toMatchObject({ waiting: 'copy it' });
  });
});

describe('isExistingReplica', () => {
  const disks = [{ sizeBytes: 10 }, { sizeBytes: 20 }];
  it('a VM of the same name and disk sizes that is no primary', () => {
    expect(isExistingReplica({ disks, role: null }, [10, 20])).toBe(true);
    expect(isExistingReplica({ disks, role: 'replica' }, [10, 20])).toBe(true);
  });
  it('not: none there, other sizes, or a primary', () => {
    expect(isExistingReplica(undefined, [10, 20])).toBe(false);
    expect(isExistingReplica({ disks, role: null }, [10, 21])).toBe(false);
    expect(isExistingReplica({ disks, role: null }, [10])).toBe(false);
    expect(isExistingReplica({ disks, role: 'primary' }, [10, 20])).toBe(false);
  });
});
