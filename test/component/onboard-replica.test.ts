/**
 * Onboarding an existing replica (R19, issue 8 item 3) through relayed host commands (a
 * provider and two host agents in-process, relay-lab.ts): app1 is replicated (an initial
 * copy), protection is disabled keeping the replica VM, the source changes, and protection is
 * enabled again with the primary told the replica exists (pair_vm baseline "resync", what
 * enable sends when the target already has the VM): the sender compares hashes and sends only
 * what differs (the host inventory reports the whole disk compared and ~1% of it sent), no
 * initial copy runs, and the replica ends bit-exact.
 */
import { writeFileSync } from 'node:fs';
import type { PairHostVmCommand } from '../../common/wire/host-control-messages.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartedProvider } from '../../agent/provider/main.ts';
import type { ProviderLab } from '../helpers/provider-lab.ts';
import {
  RELAY_SITE,
  cutAndShip,
  imagesIdentical,
  nbdOfVm,
  pointToFile,
  qemuIoFlushed,
  replicationPortOf,
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
/** Large enough that three differing 1 MiB resync chunks are ~1% of it (the file is sparse). */
const DISK = 256 * MiB;

let lab: ProviderLab;
let provider: StartedProvider;
let a: LinkedHost;
let b: LinkedHost;
let relay: RelayLab['relay'];

const qemuIo = (...cmds: string[]): Promise<void> => qemuIoFlushed(nbdOfVm(a, VM), ...cmds);

const reported = () => reportedVm(provider, 'hv-a', VM)?.replication;

/** The relay site with app1's disk at 256 MiB. */
function bigDiskSite(lab: ProviderLab): string {
  const path = lab.path('relay-site.json');
  const site = {
    ...RELAY_SITE,
    vms: RELAY_SITE.vms.map((v) => ({ ...v, disks: [{ ...v.disks[0], size: '256MiB' }] })),
  };
  writeFileSync(path, JSON.stringify(site, null, 2));
  return path;
}

beforeAll(async () => {
  ({ lab, provider, a, b, relay } = await startRelayLab(bigDiskSite));
});

afterAll(() => stopRelayLab(lab, a, b));

describe('onboarding an existing replica', () => {
  it('re-enabling over a kept replica compares and sends only the differences', async () => {
    await vmRunning(provider, 'hv-a', VM);
    const bPort = await replicationPortOf(provider, 'hv-b');
    await qemuIo('write -P 0xab 0 4M', 'write -P 0x3c 9M 3M');
    const pairs = (epoch: string, primary: Partial<PairHostVmCommand>) => ({
      replica: { pairVm: replicaPairing(VM, 'hv-a', DISK, { epoch }) },
      primary: {
        pairVm: primaryPairing(VM, 'hv-b', `127.0.2.1:${bPort}`, { epoch, ...primary }),
      },
    });
    const first = pairs('1', {});
    expect((await relay('hv-b', first.replica)).error ?? null).toBeNull();
    expect((await relay('hv-a', first.primary)).error ?? null).toBeNull();
    await waitFor(() => reported()?.baseline === 'copied', { what: 'the initial copy' });
    expect(Number(reported()?.copyBytesTotal)).toBe(DISK);

    // Disable, keeping the replica VM and its disks.
    expect(
      (await relay('hv-a', { unpairVm: { name: VM, deleteReplica: false } })).error ?? null,
    ).toBeNull();
    const kept = await relay('hv-b', { unpairVm: { name: VM, deleteReplica: false } });
    expect(kept.error ?? null).toBeNull();
    expect(kept.host?.vm).toMatchObject({ name: VM, replication: null });

    // The source changes while unprotected: 160 KiB in three places, three 1 MiB chunks of
    // the 256 (~1%).
    const changed = 160 * 1024;
    await qemuIo('write -P 0x5c 2M 64k', 'write -P 0x77 101M 64k', 'write -P 0x11 200M 32k');

    // Enable again under a new epoch, the primary told the replica exists.
    const again = pairs('2', { baseline: 'resync' });
    expect((await relay('hv-b', again.replica)).error ?? null).toBeNull();
    const primary = await relay('hv-a', again.primary);
    expect(primary.error ?? null).toBeNull();
    expect(primary.host?.vm?.replication?.baseline).toMatch(/resync-required|copied/);
    await waitFor(() => reported()?.epoch === '2' && reported()?.baseline === 'copied', {
      what: 'the onboarding resync to finish',
    });
    // No initial copy ran under the new pairing.
    expect(Number(reported()?.copyBytesTotal ?? 0)).toBe(0);
    // The whole disk was compared; only the differing chunks (~1% of it) were sent: at least
    // the bytes that changed, well under 5% (whole chunks travel, and the guest may have
    // written a little more since).
    const compared = Number(reported()?.resyncBytesCompared ?? 0);
    const sent = Number(reported()?.resyncBytesSent ?? 0);
    expect(compared).toBe(DISK);
    expect(sent).toBeGreaterThanOrEqual(changed);
    expect(sent).toBeLessThan(0.05 * DISK);

    const point = await cutAndShip(provider, a, VM);
    const out = await pointToFile(b, VM, point.id, lab.path('onboarded.raw'));
    expect(await imagesIdentical(out, nbdOfVm(a, VM))).toBe(true);
  });
});
