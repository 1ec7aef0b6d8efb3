import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ItemView, JobView } from '../../../common/api-client/index.ts';
import { NEW_YORK_SITE } from '../../helpers/provider-lab.ts';
import { replicationPort } from '../../helpers/replication-lab.ts';
import { qemuIo, SiteLab } from '../../helpers/site-lab.ts';
import {
  expectIdentical,
  itemOf,
  nbdOf,
  nextPoint,
  replicaAt,
  vmOf,
} from '../../helpers/two-site-protection.ts';
import { waitFor } from '../../helpers/wait-for.ts';

const HV1_IP = '127.0.1.1';
const HV2_IP = '127.0.1.2';
const V = ['--vault', 'prod'];
let lab: SiteLab;
let port = 8084;

beforeAll(async () => {
  lab = new SiteLab('ss-e2e-1srv-', { SECONDSITE_TIME_SCALE: '0.1' });
  port = await replicationPort([HV1_IP, HV2_IP]);
});

afterAll(async () => {
  await lab.close();
});

describe('one server protecting one of its clouds into another (R6)', () => {
  it('1. one provider, ny-hv1 (GoldCloud1) and ny-hv2 (SilverCloud1)', async () => {
    await lab.startCoordinator();
    const site = lab.siteCopy(NEW_YORK_SITE, 'ny.json', (s) => {
      s['vms'] = [
        {
          name: 'VM5',
          host: 'ny-hv2',
          state: 'running',
          disks: [{ size: '16MiB', classification: 'SILVER' }],
          nics: [{ network: 'VMNetwork2 NewYork', subnet: 'db' }],
        },
      ];
    });
    await lab.startProvider('ny', site, HV1_IP);
    lab.startHost('ny-hv1', 'ny', HV1_IP, port);
    lab.startHost('ny-hv2', 'ny', HV2_IP, port);
    await waitFor(async () => (await vmOf(lab, 'VMM-NewYork/VM5')).state === 'running');
  });

  it('2. protects VM5 from SilverCloud1 to GoldCloud1 of the same server, bit-exact', async () => {
    await lab.cli(['policy', 'create', ...V, '--name', 'local', '--copy-frequency', '30s']);
    await lab.cli([
      'policy',
      'associate',
      ...V,
      '--policy',
      'local',
      '--source-cloud',
      'VMM-NewYork/SilverCloud1',
      '--target-cloud',
      'VMM-NewYork/GoldCloud1',
    ]);
    await lab.cli([
      'network-map',
      'create',
      ...V,
      '--source',
      'VMM-NewYork/VMNetwork2 NewYork',
      '--target',
      'VMM-NewYork/VMNetwork1 NewYork',
    ]);
    await lab.cli([
      'storage-map',
      'create',
      ...V,
      '--source',
      'VMM-NewYork/SILVER',
      '--target',
      'VMM-NewYork/GOLD',
    ]);
    const primary = await nbdOf(lab, 'VMM-NewYork/VM5');
    expect(qemuIo(primary, 'write -P 0x3c 0 3M').code).toBe(0);
    const job = await lab.cli<JobView>([
      'replication',
      'enable',
      ...V,
      '--source-cloud',
      'VMM-NewYork/SilverCloud1',
      'VM5',
    ]);
    expect(job.state).toBe('succeeded');
    const item = await waitFor(
      async () => {
        const i = await itemOf(lab, 'VM5');
        return i.state === 'protected' ? i : undefined;
      },
      { what: 'VM5 protected' },
    );
    expect(item).toMatchObject<Partial<ItemView>>({
      sourceServer: 'VMM-NewYork',
      targetServer: 'VMM-NewYork',
      sourceHost: 'ny-hv2',
      targetHost: 'ny-hv1',
    });
    expect(qemuIo(primary, 'write -P 0x5e 8M 1M').code).toBe(0);
    // Taken once the write returned: a point cut after it holds all of it.
    const before = Date.now();
    const point = await nextPoint(lab, 'VM5', before);
    expectIdentical(await replicaAt(lab, 'ny-hv1', 'VM5', point), primary);
    // The storage map placed the replica in GOLD's folder on ny-hv1.
    expect(existsSync(lab.path('srv/ny-hv1/gold/VM5/disk-0.raw'))).toBe(true);
  });

  it('3. changing the network map reconnects the existing replica (R8)', async () => {
    const replicaNics = async () => {
      const vms = await lab.cli<{ name: string; host: string; nics: unknown[] }[]>([
        'vm',
        'list',
        ...V,
      ]);
      return vms.find((v) => v.name === 'VM5' && v.host === 'ny-hv1')?.nics;
    };
    // Subnet "db" does not exist in VMNetwork1 NewYork: the first subnet, "web", is used.
    expect(await replicaNics()).toEqual([{ network: 'VMNetwork1 NewYork', subnet: 'web' }]);
    await lab.cli([
      'network-map',
      'delete',
      ...V,
      '--source',
      'VMM-NewYork/VMNetwork2 NewYork',
      '--target',
      'VMM-NewYork/VMNetwork1 NewYork',
    ]);
    await lab.cli([
      'network-map',
      'create',
      ...V,
      '--source',
      'VMM-NewYork/VMNetwork2 NewYork',
      '--target',
      'VMM-NewYork/VMNetwork2 NewYork',
    ]);
    // Same subnet name exists now: "db".
    await waitFor(
      async () =>
        JSON.stringify(await replicaNics()) ===
        JSON.stringify([{ network: 'VMNetwork2 NewYork', subnet: 'db' }]),
      { what: 'the replica reconnected to VMNetwork2 NewYork/db' },
    );
    expect((await itemOf(lab, 'VM5')).state).toBe('protected');
  });
});
