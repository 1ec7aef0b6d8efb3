/**
 * Failover on the host side (issue 6: R23-R27) through the provider's relay, as the
 * coordinator sends it: a real provider and two enrolled host agents (hv-a on 127.0.1.1, hv-b
 * on 127.0.2.1; port 0) over real sockets; guest data written with qemu-io through the NBD
 * exports and compared with qemu-img / whole-disk SHA-256 through the exports.
 *
 *  1. app1 replicates hv-a → hv-b; points P1, P2 shipped.
 *  2. test failover at P1: "app1-test" (role test) reads P1 exactly; its writes stay private;
 *     replication goes on (P3) and the view does not move; a second test is refused; the point
 *     is pinned; cleanup removes the test VM and unpins.
 *  3. planned failover hv-a → hv-b: prepare (final point, digests), failover at latest under
 *     epoch 2: same point, same digests = every byte written is there; a write before commit
 *     survives commit; the VM keeps its export.
 *  4. reverse (in-sync): hv-b ships to hv-a from the failover on, the write before commit too.
 *  5. failback: planned hv-b → hv-a (epoch 3), commit, reverse: every byte is on hv-a.
 *  6. unplanned: hv-a down; hv-b fails over to the older point Q1 exactly (epoch 4);
 *     change_point to Q2 and back to Q1.
 *  7. fence: hv-a comes back with extra writes; none reaches hv-b; fence stops it, counts the
 *     unshipped bytes, and it neither starts nor resumes.
 *  8. commit, reverse with resync: hv-a's extra writes are discarded (the answer says how
 *     much), hv-a equals hv-b afterwards.
 * Negative steps: change_point on a committed failover, failover under a lower epoch,
 * unknown points, a resent failover command answers its recorded outcome.
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartedProvider } from '../../agent/provider/main.ts';
import type { RecoveryPointRecord } from '../../agent/host/journal/types.ts';
import type { AgentCommandResult } from '../../common/wire/agent-channel-messages.ts';
import type {
  FailoverResultMsg,
  HostCommand,
  HostVmMsg,
} from '../../common/wire/host-control-messages.ts';
import { sha256File } from '../helpers/nbd.ts';
import type { ProviderLab } from '../helpers/provider-lab.ts';
import {
  ackedSeq,
  cutAndShip as cutAndShipOn,
  exportToFile as exportTo,
  imagesIdentical as same,
  pointToFile,
  qemuIoFlushed as qemuIo,
  reportOf,
  reportedVm,
  startLinkedHost,
  startRelayLab,
  stopRelayLab,
  type LinkedHost,
  type RelayLab,
  replicaPairing,
  primaryPairing,
} from '../helpers/relay-lab.ts';
import { waitFor } from '../helpers/wait-for.ts';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
const VM = 'app1';

let lab: ProviderLab;
let provider: StartedProvider;
const hosts: Record<string, LinkedHost> = {};
let relay: RelayLab['relay'];
let n = 0;

const other = (h: string): string => (h === 'hv-a' ? 'hv-b' : 'hv-a');
const addressOf = (h: string): string => (h === 'hv-a' ? '127.0.1.1' : '127.0.2.1');

function uriOf(host: string, vm = VM): string {
  const v = reportedVm(provider, host, vm);
  const uri = v?.disks[0]?.nbd;
  if (!uri) throw new Error(`${vm} has no export on ${host}`);
  return uri;
}

async function runningUri(host: string, vm = VM): Promise<string> {
  return waitFor(
    () => {
      const v = reportedVm(provider, host, vm);
      return v?.state === 'HOST_VM_STATE_RUNNING' && v.disks[0]?.nbd ? v.disks[0].nbd : undefined;
    },
    { what: `${vm} running on ${host}` },
  );
}

/** The whole export copied to a file. */
const exportToFile = (uri: string): Promise<string> => exportTo(uri, lab.path(`export-${++n}.raw`));

/** The replica host's copy of disk 0 at a point. */
const pointFile = (host: string, pointId: string): Promise<string> =>
  pointToFile(hosts[host]!, VM, pointId, lab.path(`point-${++n}.raw`));

function ok(r: AgentCommandResult): { vm?: HostVmMsg | null; failover: FailoverResultMsg } {
  expect(r.error ?? null).toBeNull();
  const h = r.host;
  if (!h) throw new Error('no host answer');
  return { vm: h.vm, failover: h.failover ?? { diskDigests: [], unshippedBytes: '0', testVm: '' } };
}

const acked = (host: string): number => ackedSeq(provider, host, VM);
const cutAndShip = (host: string): Promise<RecoveryPointRecord> =>
  cutAndShipOn(provider, hosts[host]!, VM);

const pairReplica = (
  epoch: number,
  peer: string,
  baseline = '',
): Omit<HostCommand, 'commandId'> => ({
  pairVm: replicaPairing(VM, peer, SIZE, {
    epoch: String(epoch),
    nics: [{ network: 'Net-B', subnet: 'web' }],
    baseline,
  }),
});

const pairPrimary = (
  epoch: number,
  peer: string,
  baseline = '',
): Omit<HostCommand, 'commandId'> => ({
  pairVm: primaryPairing(VM, peer, `${addressOf(peer)}:${reportOf(provider, peer).certPort ?? 0}`, {
    epoch: String(epoch),
    baseline,
  }),
});

const failoverCmd = (point: string, epoch: number, digests = true) => ({
  name: VM,
  point,
  epoch: String(epoch),
  nics: [{ network: 'Net-B', subnet: 'web' }],
  digests,
});

/** Reverse: the new replica first (its receiver must accept the new primary's stream). */
async function reverse(
  primary: string,
  epoch: number,
  baseline: string,
): Promise<FailoverResultMsg> {
  const replica = other(primary);
  const r = ok(await relay(replica, pairReplica(epoch, primary, baseline)));
  expect(r.vm?.replication).toMatchObject({ role: 'replica', epoch: String(epoch) });
  const p = ok(await relay(primary, pairPrimary(epoch, replica, baseline)));
  expect(p.vm?.replication).toMatchObject({ role: 'primary', epoch: String(epoch) });
  await waitFor(() => reportedVm(provider, primary, VM)?.replication?.baseline === 'copied', {
    what: 'the reverse baseline',
  });
  return r.failover;
}

/** Planned failover `from` → `to` under `epoch`, committed: every byte arrives. */
async function plannedFailover(from: string, epoch: number): Promise<string> {
  const to = other(from);
  const before = await exportToFile(uriOf(from));
  const prepared = ok(await relay(from, { prepareFailover: { name: VM } })).failover;
  expect(prepared.diskDigests).toEqual([sha256File(before)]);
  await waitFor(() => reportedVm(provider, from, VM)?.state === 'HOST_VM_STATE_STOPPED', {
    what: `${VM} stopped on ${from}`,
  });
  const done = ok(await relay(to, { failover: failoverCmd('latest', epoch) })).failover;
  expect(done.point?.id).toBe(prepared.point?.id);
  expect(done.diskDigests).toEqual(prepared.diskDigests);
  expect(await same(before, await runningUri(to))).toBe(true);
  ok(await relay(to, { commitFailover: { name: VM } }));
  return before;
}

let p1: RecoveryPointRecord;
let p1File: string;

beforeAll(async () => {
  let a: LinkedHost, b: LinkedHost;
  ({ lab, provider, a, b, relay } = await startRelayLab());
  hosts['hv-a'] = a;
  hosts['hv-b'] = b;
});

afterAll(() => stopRelayLab(lab, ...Object.values(hosts)));

describe('failover through the relay', () => {
  it('1. replicates app1 from hv-a to hv-b', async () => {
    const uri = await runningUri('hv-a');
    await waitFor(() => reportOf(provider, 'hv-b').certPort, { what: "hv-b's port" });
    ok(await relay('hv-b', pairReplica(1, 'hv-a')));
    ok(await relay('hv-a', pairPrimary(1, 'hv-b')));
    await waitFor(() => reportedVm(provider, 'hv-a', VM)?.replication?.baseline !== undefined);
    await qemuIo(uri, 'write -P 0xa1 0 1M');
    p1 = await cutAndShip('hv-a');
    await qemuIo(uri, 'write -P 0xa2 2M 1M');
    await cutAndShip('hv-a');
    p1File = await pointFile('hv-b', p1.id);
    expect(await same(p1File, uri)).toBe(false);
  });

  it('2. test failover: the test VM reads P1, keeps its writes, and is cleaned up', async () => {
    const r = ok(
      await relay('hv-b', {
        testFailover: { name: VM, point: p1.id, nics: [{ network: 'Test', subnet: '' }] },
      }),
    );
    expect(r.failover).toMatchObject({ testVm: `${VM}-test`, point: { id: p1.id } });
    const testUri = await runningUri('hv-b', `${VM}-test`);
    expect(reportedVm(provider, 'hv-b', `${VM}-test`)).toMatchObject({
      role: 'test',
      nics: [{ network: 'Test', subnet: '' }],
      failover: { state: 'test', pointId: p1.id, testVm: VM },
    });
    expect(reportedVm(provider, 'hv-b', VM)?.failover).toMatchObject({ state: 'testing' });
    expect(await same(p1File, testUri)).toBe(true);
    const store = await hosts['hv-b']!.agent.replication.store(VM);
    expect(store.pins().get('test')).toBe(p1.id);

    // The test VM writes: private to it. Replication goes on; the view stays at P1.
    await qemuIo(testUri, 'write -P 0xee 0 64k');
    const expected = readFileSync(p1File);
    expected.fill(0xee, 0, 64 * 1024);
    const expectedFile = lab.path('test-expected.raw');
    writeFileSync(expectedFile, expected);
    await qemuIo(uriOf('hv-a'), 'write -P 0xa3 6M 1M');
    const p3 = await cutAndShip('hv-a');
    expect(await same(expectedFile, testUri)).toBe(true);
    expect(await same(p1File, await pointFile('hv-b', p1.id))).toBe(true);
    expect(await same(await pointFile('hv-b', p3.id), uriOf('hv-a'))).toBe(true);

    const second = await relay('hv-b', {
      testFailover: { name: VM, point: 'latest', nics: [] },
    });
    expect(second.error).toMatchObject({ code: 'SS_CONFLICT' });
    // The pinned point cannot be dropped while the test runs.
    await expect(store.commit()).rejects.toMatchObject({ code: 'SS_CONFLICT' });
    await expect(store.rebase(0)).rejects.toMatchObject({ code: 'SS_CONFLICT' });
    expect(store.points().map((p) => p.id)).toContain(p1.id);

    ok(await relay('hv-b', { cleanupTest: { name: VM } }));
    await waitFor(() => reportedVm(provider, 'hv-b', `${VM}-test`) === undefined, {
      what: 'the test VM gone',
    });
    expect(store.pins().size).toBe(0);
    expect(existsSync(new URL(testUri.replace(/^.*socket=/, 'file://')).pathname)).toBe(false);
    ok(await relay('hv-b', { cleanupTest: { name: VM } })); // again: nothing to do
  });

  it('3-4. planned failover to hv-b, commit, reverse in sync: writes since failover reach hv-a', async () => {
    await qemuIo(uriOf('hv-a'), 'write -P 0xa4 9M 512k'); // never cut: the final point has it
    await plannedFailover('hv-a', 2);
    const uri = uriOf('hv-b');
    expect(reportedVm(provider, 'hv-b', VM)).toMatchObject({
      role: 'primary',
      failover: { state: 'committed', epoch: '2' },
    });
    // A resent commit id answers the recorded outcome; change_point after commit is refused.
    const changed = await relay('hv-b', { changePoint: failoverCmd(p1.id, 2, false) });
    expect(changed.error).toMatchObject({ code: 'SS_CONFLICT' });
    await qemuIo(uri, 'write -P 0xb1 4M 256k');
    await reverse('hv-b', 2, 'in-sync');
    expect(reportedVm(provider, 'hv-b', VM)?.failover ?? null).toBeNull();
    await qemuIo(uri, 'write -P 0xb2 5M 256k');
    const q = await cutAndShip('hv-b');
    expect(await same(await pointFile('hv-a', q.id), uri)).toBe(true);
  });

  it('5. fails back (planned hv-b → hv-a), commits and reverses: every byte is on hv-a', async () => {
    await qemuIo(uriOf('hv-b'), 'write -P 0xb3 10M 1M');
    const before = await plannedFailover('hv-b', 3);
    await reverse('hv-a', 3, 'in-sync');
    expect(await same(before, uriOf('hv-a'))).toBe(true);
  });

  let q1File: string;
  let q1: RecoveryPointRecord;
  /** What hv-b's failed-over VM holds: Q1 and its own write. */
  let bFile: string;
  it('6. unplanned failover to an older point, change_point forward and back', async () => {
    const uri = uriOf('hv-a');
    await qemuIo(uri, 'write -P 0xc1 1M 1M');
    q1 = await cutAndShip('hv-a');
    await qemuIo(uri, 'write -P 0xc2 12M 1M');
    const q2 = await cutAndShip('hv-a');
    q1File = await pointFile('hv-b', q1.id);
    const q2File = await pointFile('hv-b', q2.id);
    await hosts['hv-a']!.stop(); // the primary site is down

    const low = await relay('hv-b', { failover: failoverCmd(q1.id, 2) });
    expect(low.error).toMatchObject({ code: 'SS_CONFLICT' }); // must raise the epoch
    const missing = await relay('hv-b', { failover: failoverCmd('no-such-point', 4) });
    expect(missing.error).toMatchObject({ code: 'SS_NOT_FOUND' });

    const r = ok(await relay('hv-b', { failover: failoverCmd(q1.id, 4) }, 'fo-unplanned'));
    expect(r.failover.point?.id).toBe(q1.id);
    expect(r.failover.diskDigests).toEqual([sha256File(q1File)]);
    expect(await same(q1File, await runningUri('hv-b'))).toBe(true);
    // Resent: the recorded outcome, applied once.
    const again = ok(await relay('hv-b', { failover: failoverCmd(q1.id, 4) }, 'fo-unplanned'));
    expect(again.failover.point?.id).toBe(q1.id);

    const fwd = ok(await relay('hv-b', { changePoint: failoverCmd(q2.id, 4) }));
    expect(fwd.failover.diskDigests).toEqual([sha256File(q2File)]);
    expect(await same(q2File, await runningUri('hv-b'))).toBe(true);
    const back = ok(await relay('hv-b', { changePoint: failoverCmd(q1.id, 4) }));
    expect(back.failover.point?.id).toBe(q1.id);
    expect(await same(q1File, await runningUri('hv-b'))).toBe(true);

    // The failed-over VM's flushed writes survive a restart of its host (durable overlay, pin).
    await qemuIo(uriOf('hv-b'), 'write -P 0xf1 3M 64k');
    const expected = readFileSync(q1File);
    expected.fill(0xf1, 3 * MiB, 3 * MiB + 64 * 1024);
    bFile = lab.path('b-expected.raw');
    writeFileSync(bFile, expected);
    const port = reportOf(provider, 'hv-b').certPort ?? 0;
    await hosts['hv-b']!.stop();
    hosts['hv-b'] = await startLinkedHost(lab, provider, 'hv-b', '127.0.2.1', port);
    expect(await same(bFile, await runningUri('hv-b'))).toBe(true);
    expect(reportedVm(provider, 'hv-b', VM)?.failover).toMatchObject({
      state: 'failed-over',
      pointId: q1.id,
    });
    const store = await hosts['hv-b']!.agent.replication.store(VM);
    expect(store.pins().get('failover')).toBe(q1.id);
    expect(store.points().map((p) => p.id)).toContain(q2.id);
  });

  it('7. fences the old primary that came back with extra writes: none reaches hv-b', async () => {
    hosts['hv-a'] = await startLinkedHost(lab, provider, 'hv-a', '127.0.1.1');
    const uri = await runningUri('hv-a'); // it restarted its VM under the old epoch
    await qemuIo(uri, 'write -P 0xdd 8M 1M');
    const extra = await hosts['hv-a']!.agent.vms.cut(VM, 'crash-consistent');
    await waitFor(
      () => /SS_NOT_PAIRED/.test(reportedVm(provider, 'hv-a', VM)?.replication?.lastError ?? ''),
      { what: 'hv-b to refuse the old epoch' },
    );
    expect(acked('hv-a')).toBeLessThan(extra.segment);
    expect(await same(bFile, uriOf('hv-b'))).toBe(true);

    const f = ok(await relay('hv-a', { fence: { name: VM, epoch: '4' } }));
    expect(Number(f.failover.unshippedBytes)).toBeGreaterThan(1 * MiB);
    expect(f.vm).toMatchObject({
      state: 'HOST_VM_STATE_STOPPED',
      role: 'none',
      failover: { state: 'fenced', epoch: '4' },
    });
    await expect(hosts['hv-a']!.agent.vms.startVm(VM)).rejects.toMatchObject({
      code: 'SS_CONFLICT',
    });
    const resume = await relay('hv-a', { pauseVm: { name: VM, paused: false } });
    expect(resume.error).toMatchObject({ code: 'SS_CONFLICT' });
  });

  it('8. commit and reverse with resync: hv-a discards its extra writes', async () => {
    ok(await relay('hv-b', { commitFailover: { name: VM } }));
    expect(await same(bFile, uriOf('hv-b'))).toBe(true); // commit keeps the writes, same export
    await qemuIo(uriOf('hv-b'), 'write -P 0xb4 14M 64k');
    const discarded = await reverse('hv-b', 4, 'resync');
    expect(Number(discarded.unshippedBytes)).toBeGreaterThan(1 * MiB);
    const q = await cutAndShip('hv-b');
    expect(await same(await pointFile('hv-a', q.id), uriOf('hv-b'))).toBe(true);
  });
});
