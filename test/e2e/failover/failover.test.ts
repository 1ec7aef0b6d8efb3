import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  ItemView,
  JobView,
  RecoveryPointView,
  VmView,
} from '../../../common/api-client/index.ts';
import { replicationPort } from '../../helpers/replication-lab.ts';
import { qemuIo, SiteLab } from '../../helpers/site-lab.ts';
import {
  expectIdentical,
  goldPolicy,
  itemOf,
  nbdOf,
  nextPoint,
  replicaAt,
  snapshotOf,
  startTwoSites,
  vmOf,
} from '../../helpers/two-site-protection.ts';
import { waitFor } from '../../helpers/wait-for.ts';

/**
 * Its own addresses, not 127.0.1.1/127.0.2.1: this scenario runs beside the other e2e lane
 * (vitest.config.ts), whose scenarios use those with the real ports.
 */
const NY_IP = '127.0.3.1';
const CHI_IP = '127.0.4.1';

let lab: SiteLab;
let port = 8084;
const V = ['--vault', 'prod'];
const job = (args: string[]): Promise<JobView> => lab.cli<JobView>([...args, ...V]);
const nic = (network: string, subnet: string) => [{ network, subnet }];

async function protectedItem(vm: string): Promise<ItemView> {
  return waitFor(
    async () => {
      const i = await itemOf(lab, vm);
      return i.state === 'protected' ? i : undefined;
    },
    { what: `${vm} protected` },
  );
}

beforeAll(async () => {
  lab = new SiteLab('ss-e2e-fo-', { SECONDSITE_TIME_SCALE: '0.1' });
  port = await replicationPort([NY_IP, CHI_IP]);
});

afterAll(async () => {
  await lab.close();
});

describe('failover, reverse and failback across two sites', () => {
  it('1. protects VM1 and VM2 from New York to Chicago', async () => {
    await startTwoSites(lab, {
      port,
      ips: { ny: NY_IP, chi: CHI_IP },
      vms: [
        {
          name: 'VM1',
          host: 'ny-hv1',
          size: '16MiB',
          classification: 'GOLD',
          nics: nic('VMNetwork1 NewYork', 'web'),
        },
        {
          name: 'VM2',
          host: 'ny-hv1',
          size: '16MiB',
          classification: 'GOLD',
          nics: nic('VMNetwork1 NewYork', 'web'),
        },
      ],
    });
    await goldPolicy(lab);
    const enabled = await job([
      'replication',
      'enable',
      '--source-cloud',
      'VMM-NewYork/GoldCloud1',
      'VM1',
      'VM2',
    ]);
    expect(enabled.state).toBe('succeeded');
    await protectedItem('VM1');
    await protectedItem('VM2');
  });

  it('2. test failover: VM1-test runs the chosen point; its writes stay private; cleanup removes it', async () => {
    const primary = await nbdOf(lab, 'VMM-NewYork/VM1');
    expect(qemuIo(primary, 'write -P 0x11 0 2M').code).toBe(0);
    // Taken once the write returned: a point cut after it holds all of it.
    const before = Date.now();
    const point = await nextPoint(lab, 'VM1', before);
    const test = await job(['failover', 'test', '--vm', 'VM1', '--recovery-point', point]);
    expect(test).toMatchObject({ type: 'failover.test', state: 'succeeded' });
    const tvm = await vmOf(lab, 'VMM-Chicago/VM1-test');
    expect(tvm.role).toBe('test');
    expect(tvm.nics.every((n) => n.network === '')).toBe(true); // no test network: not connected
    const testUri = tvm.disks[0]?.nbd ?? '';
    expectIdentical(await replicaAt(lab, 'chi-hv1', 'VM1', point), testUri);
    // A second test of the same VM is refused while one runs.
    const again = await lab.refused(['failover', 'test', '--vm', 'VM1', ...V]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('SS_CONFLICT');
    // The test VM's writes stay in its overlay; replication goes on underneath.
    expect(qemuIo(testUri, 'write -P 0x99 0 1M').code).toBe(0);
    expect(qemuIo(primary, 'write -P 0x22 4M 1M').code).toBe(0);
    // Taken once the write returned: a point cut after it holds all of it.
    const later = Date.now();
    const next = await nextPoint(lab, 'VM1', later);
    expectIdentical(await replicaAt(lab, 'chi-hv1', 'VM1', next), primary);
    expect((await itemOf(lab, 'VM1')).testFailover?.testVm).toBe('VM1-test');
    const clean = await job([
      'failover',
      'cleanup-test',
      '--vm',
      'VM1',
      '--notes',
      'app started fine',
    ]);
    expect(clean.state).toBe('succeeded');
    expect((await itemOf(lab, 'VM1')).testFailover).toBeNull();
    const vms = await lab.cli<VmView[]>(['vm', 'list', ...V]);
    expect(vms.some((v) => v.name === 'VM1-test')).toBe(false);
  });

  it('2b. a recovery plan: groups in order, a script with the plan in its environment, a manual step', async () => {
    const script = lab.path('after-group-1.sh');
    writeFileSync(
      script,
      `#!/bin/sh\necho "$SECONDSITE_PLAN $SECONDSITE_FAILOVER_TYPE $SECONDSITE_GROUP" > ${lab.path('script-ran')}\n`,
      { mode: 0o755 },
    );
    const p = ['--plan', 'app', ...V];
    await lab.cli([
      'plan',
      'create',
      '--name',
      'app',
      ...V,
      '--source-cloud',
      'VMM-NewYork/GoldCloud1',
      '--target-cloud',
      'VMM-Chicago/GoldCloud2',
    ]);
    await lab.cli(['plan', 'add-vm', ...p, '--group', '1', 'VM1']);
    await lab.cli(['plan', 'add-vm', ...p, '--group', '2', 'VM2']);
    await lab.cli(['plan', 'add-action', ...p, '--group', '1', '--after', '--script', script]);
    await lab.cli([
      'plan',
      'add-action',
      ...p,
      '--group',
      '2',
      '--before',
      '--manual',
      'check the database',
    ]);
    const started = await lab.cli<JobView>(['failover', 'test', ...p, '--no-wait']);
    const waiting = await waitFor(
      async () => {
        const j = await lab.cli<JobView>(['job', 'show', started.id]);
        return j.state === 'waiting' ? j : undefined;
      },
      { what: 'the plan job waiting at its manual step' },
    );
    // Group 1 ran (VM1-test exists, the script saw the plan), group 2 has not started.
    expect(readFileSync(lab.path('script-ran'), 'utf8').trim()).toBe('app test 1');
    expect(waiting.steps.find((s) => s.name === 'group:2')?.state).toBe('pending');
    // The coordinator is killed (-9) while the plan waits; restarted, it still waits there.
    await lab.killAndRestartCoordinator();
    const restarted = await lab.cli<JobView>(['job', 'show', started.id]);
    expect(restarted.state).toBe('waiting');
    await waitFor(
      async () => {
        const servers = await lab.cli<{ state: string }[]>(['server', 'list', ...V]);
        return servers.every((s) => s.state === 'connected');
      },
      { what: 'both providers reconnected to the restarted coordinator' },
    );
    await lab.cli(['job', 'resume', started.id]);
    const done = await lab.cli<JobView>(['job', 'wait', started.id]);
    expect(done.state).toBe('succeeded');
    const ended = (name: string) =>
      Date.parse(done.steps.find((s) => s.name === name)?.endedAt ?? '');
    const began = (name: string) =>
      Date.parse(done.steps.find((s) => s.name === name)?.startedAt ?? '');
    expect(began('group:2')).toBeGreaterThanOrEqual(ended('group:1'));
    const vms = (await lab.cli<VmView[]>(['vm', 'list', ...V])).map((v) => v.name);
    expect(vms).toEqual(expect.arrayContaining(['VM1-test', 'VM2-test']));
    expect((await lab.cli<JobView>(['failover', 'cleanup-test', ...p])).state).toBe('succeeded');
    const after = (await lab.cli<VmView[]>(['vm', 'list', ...V])).map((v) => v.name);
    expect(after.filter((n) => n.endsWith('-test'))).toEqual([]);
  });

  it('2c. a plan cancelled at its manual step leaves every VM in a stated state', async () => {
    const p = ['--plan', 'app', ...V];
    const started = await lab.cli<JobView>(['failover', 'test', ...p, '--no-wait']);
    await waitFor(
      async () => (await lab.cli<JobView>(['job', 'show', started.id])).state === 'waiting',
      { what: 'the plan job waiting at its manual step' },
    );
    const cancelled = await lab.cli<JobView>(['job', 'cancel', started.id]);
    expect(cancelled.state).toBe('cancelled');
    // Group 1 ran: VM1's test copy runs and its item says so; group 2 never started.
    expect((await itemOf(lab, 'VM1')).testFailover?.testVm).toBe('VM1-test');
    expect((await itemOf(lab, 'VM2')).testFailover).toBeNull();
    expect((await itemOf(lab, 'VM1')).state).toBe('protected');
    // The stated state is one the administrator can act on: the cleanup removes it.
    expect((await lab.cli<JobView>(['failover', 'cleanup-test', ...p])).state).toBe('succeeded');
    const vms = (await lab.cli<VmView[]>(['vm', 'list', ...V])).map((v) => v.name);
    expect(vms.filter((n) => n.endsWith('-test'))).toEqual([]);
  });

  let expected = '';

  it('3. planned failover of VM1: every byte written at New York runs at Chicago', async () => {
    const primary = await nbdOf(lab, 'VMM-NewYork/VM1');
    expect(qemuIo(primary, 'write -P 0x33 8M 1M', 'write -z 1M 64k').code).toBe(0);
    expected = snapshotOf(lab, primary, 'vm1-before-planned');
    const planned = await job(['failover', 'planned', '--vm', 'VM1']);
    expect(planned).toMatchObject({ type: 'failover.planned', state: 'succeeded' });
    const item = await itemOf(lab, 'VM1');
    expect(item.state).toBe('failed-over');
    expect(item.failover?.type).toBe('planned');
    const running = await vmOf(lab, 'VMM-Chicago/VM1');
    expect(running.state).toBe('running');
    expect(running.nics).toEqual([{ network: 'VMNetwork1 Chicago', subnet: 'web' }]);
    expectIdentical(expected, running.disks[0]?.nbd ?? '');
  });

  it('4. commit and reverse: Chicago is the primary and its writes reach New York', async () => {
    expect((await job(['failover', 'commit', '--vm', 'VM1'])).state).toBe('succeeded');
    expect((await itemOf(lab, 'VM1')).state).toBe('committed');
    expect((await job(['replication', 'reverse', '--vm', 'VM1'])).state).toBe('succeeded');
    const item = await protectedItem('VM1');
    expect(item).toMatchObject({ sourceServer: 'VMM-Chicago', targetServer: 'VMM-NewYork' });
    const primary = await nbdOf(lab, 'VMM-Chicago/VM1');
    expect(qemuIo(primary, 'write -P 0x44 12M 2M').code).toBe(0);
    // Taken once the write returned: a point cut after it holds all of it.
    const before = Date.now();
    const point = await nextPoint(lab, 'VM1', before);
    expectIdentical(await replicaAt(lab, 'ny-hv1', 'VM1', point), primary);
  });

  it('5. failback: planned failover back to New York, commit, reverse: every byte is home', async () => {
    const primary = await nbdOf(lab, 'VMM-Chicago/VM1');
    expected = snapshotOf(lab, primary, 'vm1-before-failback');
    expect((await job(['failover', 'planned', '--vm', 'VM1'])).state).toBe('succeeded');
    expect((await job(['failover', 'commit', '--vm', 'VM1'])).state).toBe('succeeded');
    expect((await job(['replication', 'reverse', '--vm', 'VM1'])).state).toBe('succeeded');
    const item = await protectedItem('VM1');
    expect(item).toMatchObject({ sourceServer: 'VMM-NewYork', targetServer: 'VMM-Chicago' });
    expectIdentical(expected, await nbdOf(lab, 'VMM-NewYork/VM1'));
    // R10: the replica's network did not change while it ran at Chicago, so VM1 is back on
    // its own source network and subnet.
    expect((await vmOf(lab, 'VMM-NewYork/VM1')).nics).toEqual([
      { network: 'VMNetwork1 NewYork', subnet: 'web' },
    ]);
  });

  it('6. unplanned failover of VM2 with New York down, to an older point; split brain is fenced', async () => {
    const primary = await nbdOf(lab, 'VMM-NewYork/VM2');
    expect(qemuIo(primary, 'write -P 0x55 0 1M').code).toBe(0);
    // Taken once the write returned: a point cut after it holds all of it.
    let t = Date.now();
    const older = await nextPoint(lab, 'VM2', t);
    const olderImage = await replicaAt(lab, 'chi-hv1', 'VM2', older);
    expect(qemuIo(primary, 'write -P 0x66 2M 1M').code).toBe(0);
    // Taken once the write returned: a point cut after it holds all of it.
    t = Date.now();
    const newer = await nextPoint(lab, 'VM2', t);
    const newerImage = await replicaAt(lab, 'chi-hv1', 'VM2', newer);
    const points = await lab.cli<RecoveryPointView[]>(['recovery-point', 'list', ...V, 'VM2']);
    expect(points.map((p) => p.id)).toContain(older);
    // Extra writes New York makes after the last shipped point, then the whole site goes
    // down: its host and its provider (R30: the site manager is no prerequisite).
    expect(qemuIo(primary, 'write -P 0x77 6M 1M').code).toBe(0);
    lab.hosts['ny-hv1']?.daemon.child.kill('SIGKILL');
    await lab.hosts['ny-hv1']?.daemon.exited;
    await lab.stopProvider('ny');
    const unplanned = await job([
      'failover',
      'unplanned',
      '--vm',
      'VM2',
      '--recovery-point',
      older,
    ]);
    expect(unplanned).toMatchObject({ type: 'failover.unplanned', state: 'succeeded' });
    const item = await itemOf(lab, 'VM2');
    expect(item.state).toBe('failed-over');
    expect(item.failover?.recoveryPoint?.id).toBe(older);
    let running = await nbdOf(lab, 'VMM-Chicago/VM2');
    expectIdentical(olderImage, running);
    // Before commit the point can still move: forward to the newer one, then back (R26).
    const change = (point: string) =>
      job(['failover', 'change-point', '--vm', 'VM2', '--recovery-point', point]);
    expect((await change(newer)).state).toBe('succeeded');
    expect((await itemOf(lab, 'VM2')).failover?.recoveryPoint?.id).toBe(newer);
    expectIdentical(newerImage, await nbdOf(lab, 'VMM-Chicago/VM2'));
    expect((await change(older)).state).toBe('succeeded');
    running = await nbdOf(lab, 'VMM-Chicago/VM2');
    expectIdentical(olderImage, running);
    // New York comes back with its extra writes: it is fenced, nothing of them reaches Chicago.
    await lab.restartProvider('ny');
    lab.restartHost('ny-hv1');
    await waitFor(async () => (await vmOf(lab, 'VMM-NewYork/VM1')).state === 'running', {
      what: 'ny-hv1 back',
    });
    await new Promise((r) => setTimeout(r, 3000)); // a few of its cycles would have shipped
    expectIdentical(olderImage, running);
    // Commit, then reverse: New York's extra writes are discarded (a resync), VM2's replica
    // at New York ends equal to Chicago's running VM.
    expect((await job(['failover', 'commit', '--vm', 'VM2'])).state).toBe('succeeded');
    const reverse = await job(['replication', 'reverse', '--vm', 'VM2']);
    expect(reverse.state).toBe('succeeded');
    await protectedItem('VM2');
    const chiPrimary = await nbdOf(lab, 'VMM-Chicago/VM2');
    expect(qemuIo(chiPrimary, 'write -P 0x88 10M 1M').code).toBe(0);
    // Taken once the write returned: a point cut after it holds all of it.
    t = Date.now();
    const point = await nextPoint(lab, 'VM2', t);
    expectIdentical(await replicaAt(lab, 'ny-hv1', 'VM2', point), chiPrimary);
  });
});
