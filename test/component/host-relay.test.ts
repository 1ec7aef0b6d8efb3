/**
 * Relayed host commands (issue 5's control path) against a real coordinator, a real provider
 * and two enrolled host agents (hv-a on 127.0.1.1, hv-b on 127.0.2.1; port 0 everywhere), all
 * over real sockets. Commands enter the provider's dispatcher as the coordinator sends them
 * (`{ host: { host, command } }`) and travel the hosts' control streams; data is written with
 * qemu-io through hv-a's NBD export and compared with qemu-img against what hv-b reads.
 *
 *  1. Hellos carry the hosts' replication endpoints; reports carry the site's classifications.
 *  2. pair replica on hv-b (disk placed in a storage folder, NICs, retention), pair primary on
 *     hv-a with start_initial_copy: the initial copy runs; a conflicting pairing is refused and
 *     an identical one changes nothing.
 *  3. A cut reaches hv-b: list_points returns it; its read equals hv-a's disk.
 *  4. pause: writes and a cut do not ship (hv-a's unshipped bytes grow, hv-b's point count
 *     stays); resume: they arrive. A resent command id is applied once (provider and host).
 *  5. resync: a replica damaged behind the store's back is repaired by a hash compare.
 *  6. A command for a host that is offline waits and is sent when it reconnects.
 *  7. unpair (primary) and unpair with delete_replica (replica): the replica's files are gone.
 * Negative steps: an unknown host (SS_NOT_FOUND), commands for VMs that are not there.
 */
import { existsSync, openSync, closeSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartedProvider } from '../../agent/provider/main.ts';
import type { RecoveryPointRecord } from '../../agent/host/journal/types.ts';
import type { AgentCommandResult } from '../../common/wire/agent-channel-messages.ts';
import type { HostVmMsg } from '../../common/wire/host-control-messages.ts';
import type { ProviderLab } from '../helpers/provider-lab.ts';
import {
  ackedSeq,
  cutAndShip as cutAndShipOn,
  imagesIdentical,
  nbdOfVm,
  pointToFile,
  qemuIoFlushed,
  reportOf,
  reportedVm,
  startRelayLab,
  stopRelayLab,
  vmRunning,
  type LinkedHost,
  type RelayLab,
  replicaPairing,
  primaryPairing,
} from '../helpers/relay-lab.ts';
import { waitFor } from '../helpers/wait-for.ts';

const MiB = 1024 * 1024;
const VM = 'app1';

let lab: ProviderLab;
let provider: StartedProvider;
let a: LinkedHost;
let b: LinkedHost;
let relay: RelayLab['relay'];
let storage: string;
let bPort: number;

const qemuIo = (...cmds: string[]): Promise<void> => qemuIoFlushed(nbdOfVm(a, VM), ...cmds);

/** hv-b's copy of disk 0 at `pointId` compared with hv-a's disk now. */
async function replicaEqualsPrimary(pointId: string, n: string): Promise<boolean> {
  const out = await pointToFile(b, VM, pointId, lab.path(`read-${n}.raw`));
  return imagesIdentical(out, nbdOfVm(a, VM));
}

function hostVm(r: AgentCommandResult): HostVmMsg {
  expect(r.error ?? null).toBeNull();
  expect(r.result).toBe('host');
  const vm = r.host?.vm;
  if (!vm) throw new Error('the answer carries no VM');
  return vm;
}

const acked = (): number => ackedSeq(provider, 'hv-a', VM);
const cutAndShip = (): Promise<RecoveryPointRecord> => cutAndShipOn(provider, a, VM);

const pairReplica = {
  pairVm: replicaPairing(VM, 'hv-a', 16 * MiB, { nics: [{ network: 'Net-B', subnet: 'web' }] }),
};

const pairPrimary = () => ({ pairVm: primaryPairing(VM, 'hv-b', `127.0.2.1:${bPort}`) });

beforeAll(async () => {
  ({ lab, provider, a, b, relay } = await startRelayLab());
  storage = lab.path('b-storage/gold');
  pairReplica.pairVm.disks[0]!.path = storage;
});

afterAll(() => stopRelayLab(lab, a, b));

describe('relayed host commands', () => {
  it('1. reports each host with its replication endpoint and the site classifications', async () => {
    const vm = await vmRunning(provider, 'hv-a', VM); // created and running
    expect(vm.disks[0]).toMatchObject({ index: 0, classification: 'GOLD' });
    expect(vm).toMatchObject({ protected: false, paused: false, replication: null });
    const ra = reportOf(provider, 'hv-a');
    const rb = reportOf(provider, 'hv-b');
    expect(ra).toMatchObject({ address: '127.0.1.1', cloud: 'PrimaryCloud', connected: true });
    expect(rb).toMatchObject({ address: '127.0.2.1', cloud: 'RecoveryCloud', connected: true });
    expect(ra.certPort).toBe(await a.agent.replication.listening());
    bPort = rb.certPort ?? 0;
    expect(bPort).toBe(await b.agent.replication.listening());
  });

  it('2. pairs the replica and the primary; the initial copy runs', async () => {
    await qemuIo('write -P 0xab 0 1M', 'write -P 0x3c 9M 256k'); // data before pairing: a real copy
    const replica = hostVm(await relay('hv-b', pairReplica));
    expect(replica).toMatchObject({
      name: VM,
      state: 'HOST_VM_STATE_STOPPED',
      nics: [{ network: 'Net-B', subnet: 'web' }],
      replication: { role: 'replica', baseline: 'zero' },
    });
    expect(existsSync(join(storage, VM, 'disk-0.raw'))).toBe(true); // R9 placement

    const primary = hostVm(await relay('hv-a', pairPrimary()));
    expect(primary).toMatchObject({
      protected: true,
      paused: false,
      replication: { role: 'primary', baseline: 'initial-copy-required', epoch: '1' },
    });
    await waitFor(() => reportedVm(provider, 'hv-a', VM)?.replication?.baseline === 'copied', {
      what: 'the initial copy to finish',
    });

    // The same pairing again (a new id): applied, nothing changes. Another peer: refused.
    const again = hostVm(await relay('hv-a', pairPrimary()));
    expect(again.replication).toMatchObject({ baseline: 'copied' });
    const other = await relay('hv-a', {
      pairVm: { ...pairPrimary().pairVm, peerHost: 'hv-c' },
    });
    expect(other.error).toMatchObject({ code: 'SS_CONFLICT' });
    expect(other.host?.error).toMatchObject({ code: 'SS_CONFLICT' });
    const replicaAgain = hostVm(await relay('hv-b', pairReplica));
    expect(replicaAgain.replication).toMatchObject({ role: 'replica' });
  });

  it('3. ships a cut: list_points returns it and its read equals the primary', async () => {
    await qemuIo('write -P 0x5c 5M 64k', 'write -P 0x11 15M 1M');
    const point = await cutAndShip();
    const listed = await relay('hv-b', { listPoints: { name: VM } });
    expect(listed.error ?? null).toBeNull();
    const points = listed.host?.points ?? [];
    expect(points.map((p) => p.id)).toContain(point.id);
    const times = points.map((p) => Number(p.timeMs));
    expect(times).toEqual([...times].sort((x, y) => x - y)); // oldest first
    expect(await replicaEqualsPrimary(point.id, 'p1')).toBe(true);
    await waitFor(() => reportedVm(provider, 'hv-b', VM)?.latestPoint?.id === point.id, {
      what: "hv-b's report to show the point",
    });
    const reported = reportedVm(provider, 'hv-b', VM)!;
    expect(reported.pointCount).toBe(points.length);
    expect(reported.oldestPointMs).toBe(points[0]!.timeMs);
  });

  it('4. pause keeps journaling and ships nothing; resume ships what piled up; ids apply once', async () => {
    const paused = hostVm(await relay('hv-a', { pauseVm: { name: VM, paused: true } }, 'pause-1'));
    expect(paused).toMatchObject({ paused: true, replication: { state: 'paused' } });
    const before = reportedVm(provider, 'hv-b', VM)?.pointCount ?? 0;
    const ackedBefore = acked();

    await qemuIo('write -P 0x77 2M 512k');
    const held = await a.agent.vms.cut(VM, 'crash-consistent');
    const grown = await waitFor(
      () => {
        const v = reportedVm(provider, 'hv-a', VM);
        return v?.latestPoint?.id === held.id && Number(v.unshippedBytes) > 512 * 1024
          ? v
          : undefined;
      },
      { what: "hv-a's unshipped bytes to grow" },
    );
    expect(grown.paused).toBe(true);
    // Not a timing assertion: a running sender ships a cut within milliseconds; this window
    // only gives one the chance to, so that a pause that did not hold shows here.
    await sleep(1_000);
    expect(reportedVm(provider, 'hv-b', VM)!.pointCount).toBe(before);
    expect(acked()).toBe(ackedBefore);

    // The same id again: the recorded answer; the host is not asked a second time.
    const applied = provider.agent.commands.applied();
    const resent = await relay('hv-a', { pauseVm: { name: VM, paused: true } }, 'pause-1');
    expect(resent).toEqual(await relay('hv-a', { pauseVm: { name: VM, paused: true } }, 'pause-1'));
    expect(provider.agent.commands.applied()).toBe(applied);

    const resumed = hostVm(await relay('hv-a', { pauseVm: { name: VM, paused: false } }));
    expect(resumed.paused).toBe(false);
    await waitFor(() => acked() >= held.segment, { what: 'the held segment to ship' });
    await waitFor(() => (reportedVm(provider, 'hv-b', VM)?.pointCount ?? 0) > before, {
      what: 'hv-b to retain the held point',
    });
    expect(await replicaEqualsPrimary(held.id, 'held')).toBe(true);

    // The pause id sent to the host again (as after a provider restart): the host answers
    // with its record and does not pause a second time.
    const direct = await provider.agent.hosts.registry.relay('hv-a', {
      commandId: 'pause-1',
      pauseVm: { name: VM, paused: true },
    });
    expect(direct.error ?? null).toBeNull();
    expect(direct.vm?.paused).toBe(false);
    expect(a.agent.vms.pairingOf(VM)?.paused).toBeUndefined();
  });

  it('5. resync repairs a replica damaged behind its store, sending only differences', async () => {
    const last = await cutAndShip();
    // Damage the replica image directly (as a bad disk would).
    const file = join(storage, VM, 'disk-0.raw');
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(4096, 0xee), 0, 4096, 3 * MiB);
    closeSync(fd);
    expect(await replicaEqualsPrimary(last.id, 'damaged')).toBe(false);

    const asked = hostVm(await relay('hv-a', { resyncVm: { name: VM } }));
    expect(asked.replication?.baseline).toMatch(/resync-required|copied/);
    await waitFor(() => reportedVm(provider, 'hv-a', VM)?.replication?.baseline === 'copied', {
      what: 'the resync to finish',
    });
    await qemuIo('write -P 0x42 7M 64k');
    const after = await cutAndShip();
    expect(await replicaEqualsPrimary(after.id, 'resynced')).toBe(true);
  });

  it('6. waits for a host that is offline and sends the command when it reconnects', async () => {
    await b.disconnect();
    await waitFor(() => !reportOf(provider, 'hv-b').connected, { what: 'hv-b disconnected' });
    const pending = relay('hv-b', { listPoints: { name: VM } });
    let settled = false;
    void pending.finally(() => (settled = true));
    // Other commands are not held up behind it.
    const other = await relay('hv-a', { listPoints: { name: VM } });
    expect(other.error ?? null).toBeNull();
    expect(settled).toBe(false);
    await b.connect();
    const answer = await pending;
    expect(answer.error ?? null).toBeNull();
    expect((answer.host?.points ?? []).length).toBeGreaterThan(0);
  });

  it('7. unpairs the primary, then the replica with delete_replica: its files are gone', async () => {
    const primary = hostVm(await relay('hv-a', { unpairVm: { name: VM, deleteReplica: false } }));
    expect(primary).toMatchObject({ protected: false, replication: null, paused: false });
    expect(a.agent.vms.pairingOf(VM)).toBeUndefined();

    const gone = await relay('hv-b', { unpairVm: { name: VM, deleteReplica: true } });
    expect(gone.error ?? null).toBeNull();
    expect(gone.host?.vm ?? null).toBeNull();
    expect(existsSync(join(storage, VM, 'disk-0.raw'))).toBe(false);
    expect(existsSync(join(b.data, 'vms', VM))).toBe(false);
    await waitFor(() => reportedVm(provider, 'hv-b', VM) === undefined, {
      what: "app1 gone from hv-b's report",
    });
    // Again (a new id): nothing left to do, still fine.
    const twice = await relay('hv-b', { unpairVm: { name: VM, deleteReplica: true } });
    expect(twice.error ?? null).toBeNull();
  });

  it('refuses an unknown host and commands for VMs that are not there', async () => {
    const unknown = await relay('hv-zz', { listPoints: { name: VM } });
    expect(unknown.error).toMatchObject({ code: 'SS_NOT_FOUND' });
    expect(unknown.error?.message).toContain('hv-zz');
    const noVm = await relay('hv-b', { pauseVm: { name: 'nope', paused: true } });
    expect(noVm.error).toMatchObject({ code: 'SS_NOT_FOUND' });
    const notPaired = await relay('hv-a', { resyncVm: { name: VM } });
    expect(notPaired.error).toMatchObject({ code: 'SS_NOT_PAIRED' });
  });
});
