import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { NbdClient } from '../../../common/nbd/client.ts';
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
  CHI_IP,
  NY_IP,
  expectIdentical,
  goldPolicy,
  itemOf,
  nbdOf,
  nextPoint as nextPointOf,
  replicaAt,
  startTwoSites,
  vmOf,
} from '../../helpers/two-site-protection.ts';
import { waitFor } from '../../helpers/wait-for.ts';
/** Copy frequency 30 s runs as 3 s cycles; health durations shrink alike. */
const TIME_SCALE = '0.1';

let lab: SiteLab;
let port = 8084;

const item = (vm: string): Promise<ItemView> => itemOf(lab, vm);
const items = (): Promise<ItemView[]> => lab.cli(['item', 'list', '--vault', 'prod']);
const vmShow = (name: string): Promise<VmView> => vmOf(lab, name);
/** `replication enable` of VMs of one cloud (the command's arguments). */
const enable = (cloud: string, ...vms: string[]): string[] => [
  'replication',
  'enable',
  '--vault',
  'prod',
  '--source-cloud',
  cloud,
  ...vms,
];
const nextPoint = (vm: string, after: number): Promise<string> => nextPointOf(lab, vm, after);

/** The replica of `vm` at `point`, read by the target host, equals the primary's disk now. */
async function replicaEqualsPrimary(vm: string, point: string): Promise<void> {
  const replica = await replicaAt(lab, 'chi-hv1', vm, point);
  expectIdentical(replica, await nbdOf(lab, `VMM-NewYork/${vm}`));
}

/** Every regular file under `dir` whose bytes contain `needle`. */
function filesContaining(dir: string, needle: Buffer): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...filesContaining(p, needle));
    else if (st.isFile() && readFileSync(p).indexOf(needle) >= 0) out.push(p);
  }
  return out;
}

beforeAll(async () => {
  lab = new SiteLab('ss-e2e-prot-', { SECONDSITE_TIME_SCALE: TIME_SCALE });
  port = await replicationPort([NY_IP, CHI_IP]);
});

afterAll(async () => {
  await lab.close();
});

describe('protection across two sites', () => {
  it('1. starts a coordinator, New York and Chicago with one host each', async () => {
    const nic = (network: string, subnet: string) => [{ network, subnet }];
    await startTwoSites(lab, {
      port,
      coordinatorEnv: {
        SECONDSITE_TRACE_MESSAGES: lab.path('trace.bin'),
        SECONDSITE_MONITORING_WINDOW: '30s',
      },
      vms: [
        {
          name: 'VM1',
          host: 'ny-hv1',
          size: '32MiB',
          classification: 'GOLD',
          nics: nic('VMNetwork1 NewYork', 'web'),
        },
        {
          name: 'VM2',
          host: 'ny-hv1',
          size: '16MiB',
          classification: 'GOLD',
          nics: nic('VMNetwork2 NewYork', 'db'),
        },
        { name: 'VM5', host: 'ny-hv2', size: '8MiB', classification: 'SILVER', nics: [] },
      ],
    });
  });

  it('2. creates a policy, associates the gold clouds and maps networks and storage', async () => {
    await goldPolicy(lab);
  });

  it('3. negative: a VM of an unassociated cloud, or an unknown VM, is refused and nothing is stored', async () => {
    const other = await lab.refused(enable('VMM-NewYork/SilverCloud1', 'VM5'));
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('SS_NOT_PROTECTABLE');
    expect(other.stderr).toContain('not associated with a replication policy');
    const unknown = await lab.refused(enable('VMM-NewYork/GoldCloud1', 'VM1', 'NOPE'));
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('SS_NOT_FOUND');
    expect(await items()).toEqual([]);
  });

  it('4. enables VM1 (with data: an initial copy) and VM2 (empty); both become protected', async () => {
    const vm1 = (await vmShow('VMM-NewYork/VM1')).disks[0]?.nbd ?? '';
    expect(qemuIo(vm1, 'write -P 0x5a 0 4M', 'write -P 0x17 20M 3M').code).toBe(0);
    const job = await lab.cli<JobView>(enable('VMM-NewYork/GoldCloud1', 'VM1', 'VM2'));
    expect(job).toMatchObject({ type: 'replication.enable', state: 'succeeded' });
    const again = await lab.refused(enable('VMM-NewYork/GoldCloud1', 'VM2'));
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('SS_CONFLICT');
    await waitFor(async () => (await items()).every((i) => i.state === 'protected'), {
      what: 'both items protected',
    });
    const v1 = await item('VM1');
    expect(v1).toMatchObject({
      vm: 'VM1',
      policy: 'gold',
      sourceServer: 'VMM-NewYork',
      targetServer: 'VMM-Chicago',
      sourceHost: 'ny-hv1',
      targetHost: 'chi-hv1',
    });
    // The initial copy carried the data written before protection: the replica at its
    // newest point equals the primary.
    await replicaEqualsPrimary('VM1', await nextPoint('VM1', 0));
    const replica = await vmShow('VMM-Chicago/VM1');
    expect(replica.role).toBe('replica');
    expect(replica.nics).toEqual([{ network: 'VMNetwork1 Chicago', subnet: 'web' }]);
    // VM2's network has no map: its replica adapter is not connected (R8).
    expect((await vmShow('VMM-Chicago/VM2')).nics).toEqual([{ network: '', subnet: '' }]);
  });

  it('5. after each cycle the replica at the newest point equals the primary, byte for byte', async () => {
    const vm1 = (await vmShow('VMM-NewYork/VM1')).disks[0]?.nbd ?? '';
    const seen: string[] = [];
    for (const [n, pattern] of [
      [1, '0x21'],
      [2, '0x42'],
    ] as const) {
      expect(qemuIo(vm1, `write -P ${pattern} ${n * 5}M 1M`, `write -z ${n * 7}M 64k`).code).toBe(
        0,
      );
      // Taken once the write returned: a point cut after it holds all of it.
      const before = Date.now();
      const point = await nextPoint('VM1', before);
      await replicaEqualsPrimary('VM1', point);
      seen.push(point);
    }
    const points = await lab.cli<RecoveryPointView[]>([
      'recovery-point',
      'list',
      '--vault',
      'prod',
      'VM1',
    ]);
    // The target's retained points, oldest first, include both points just checked.
    expect(points.map((p) => p.id)).toEqual(expect.arrayContaining(seen));
    const times = points.map((p) => Date.parse(p.time));
    expect(times).toEqual([...times].sort((x, y) => x - y));
    expect(points.every((p) => p.type === 'crash-consistent' || p.type === 'app-consistent')).toBe(
      true,
    );
    const v = await item('VM1');
    expect(v.health).toBe('normal');
    expect(v.rpoSeconds).not.toBeNull();
  });

  it('6. pause keeps changes at the source; resume ships them', async () => {
    const paused = await lab.cli<JobView>(['replication', 'pause', '--vault', 'prod', 'VM2']);
    expect(paused.state).toBe('succeeded');
    const p = await item('VM2');
    expect(p.state).toBe('paused');
    expect(p.errors.map((e) => e.code)).toContain('paused');
    const vm2 = (await vmShow('VMM-NewYork/VM2')).disks[0]?.nbd ?? '';
    expect(qemuIo(vm2, 'write -P 0x33 1M 2M').code).toBe(0);
    const before = Date.now();
    await lab.cli<JobView>(['replication', 'resume', '--vault', 'prod', 'VM2']);
    const point = await nextPoint('VM2', before);
    await replicaEqualsPrimary('VM2', point);
    expect((await item('VM2')).state).toBe('protected');
  });

  it('6b. resync compares both sides and leaves the replica equal to the primary', async () => {
    const job = await lab.cli<JobView>(['replication', 'resync', '--vault', 'prod', 'VM2']);
    expect(job).toMatchObject({ type: 'replication.resync', state: 'succeeded' });
    expect((await item('VM2')).state).toBe('protected');
    const vm2 = (await vmShow('VMM-NewYork/VM2')).disks[0]?.nbd ?? '';
    expect(qemuIo(vm2, 'write -P 0x4d 5M 1M').code).toBe(0);
    const before = Date.now();
    await replicaEqualsPrimary('VM2', await nextPoint('VM2', before - 1));
  });

  it('7. health: the target host stops → warning, then critical with the reason; back → normal', async () => {
    const copied = (await item('VM1')).initialReplication?.bytesDone;
    await lab.stopHost('chi-hv1');
    const warned = await waitFor(
      async () => {
        const v = await item('VM1');
        return v.health === 'warning' ? v : undefined;
      },
      { what: 'VM1 warning' },
    );
    expect(warned.errors.length).toBeGreaterThan(0);
    const critical = await waitFor(
      async () => {
        const v = await item('VM1');
        return v.health === 'critical' ? v : undefined;
      },
      { what: 'VM1 critical' },
    );
    const stopped = critical.errors.find((e) => e.code === 'replication-stopped');
    expect(stopped?.message).toMatch(/failed for/);
    expect(stopped?.action).toMatch(/both hosts/);
    lab.restartHost('chi-hv1');
    await waitFor(async () => (await item('VM1')).health === 'normal', {
      what: 'VM1 normal again',
    });
    // No full copy: the initial copy's byte count did not move.
    expect((await item('VM1')).initialReplication?.bytesDone).toBe(copied);
  });

  it('8. privacy: disk contents reach the replica but never the coordinator (R32)', async () => {
    const marker = randomBytes(64);
    const block = Buffer.concat(Array.from({ length: 64 }, () => marker)); // 4 KiB
    const nbd = await NbdClient.connect((await vmShow('VMM-NewYork/VM1')).disks[0]?.nbd ?? '');
    await nbd.write(9 * 1024 * 1024, block);
    await nbd.flush();
    await nbd.close();
    // Taken once the write returned: a point cut after it holds all of it.
    const before = Date.now();
    await replicaEqualsPrimary('VM1', await nextPoint('VM1', before));
    // The positive control: the marker did travel, to the replica disk the storage map placed
    // in Chicago's GOLD location.
    expect(filesContaining(lab.path('srv/chi-hv1/gold'), marker).length).toBeGreaterThan(0);
    expect(filesContaining(lab.path('coordinator'), marker)).toEqual([]);
    const trace = readFileSync(lab.path('trace.bin'));
    expect(trace.length).toBeGreaterThan(10_000); // it did record the channel's traffic
    expect(trace.indexOf(marker)).toBe(-1);
  });

  it('9. disable ends protection; the policy keeps the replica', async () => {
    const job = await lab.cli<JobView>(['replication', 'disable', '--vault', 'prod', 'VM2']);
    expect(job.state).toBe('succeeded');
    expect((await item('VM2')).state).toBe('disabled');
    const replica = await vmShow('VMM-Chicago/VM2');
    expect(replica.role).toBe('none');
  });
});
