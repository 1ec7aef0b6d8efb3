import { describe, expect, it } from 'vitest';
import { isSecondsiteError } from '../../common/errors/errors.ts';
import { addMap } from '../domain/mapping.ts';
import { placeReplica } from '../domain/placement.ts';
import { checkAssociation, validatePolicy, type CloudAssociationView } from '../domain/policy.ts';
import {
  CH,
  NY,
  SEED_FABRICS,
  SEED_NETWORK_MAPS,
  SEED_STORAGE_MAPS,
} from '../domain/seed-fabric.fixture.ts';
import type { ServerRecord } from '../domain/server.ts';
import { hostOsViews, serverFabricOf, targetSiteOf } from './fabric.ts';
import { deploy, recordOf, type SiteJson } from './site-record.fixture.ts';

const GiB = 1024 ** 3;

/**
 * The seed's example as site files: New York's clouds on LogicalNetwork1 NewYork; Chicago's
 * clouds on LogicalNetwork1 NewYork and Chicago, with VMNetwork2 Chicago on
 * LogicalNetwork2Chicago, which no cloud uses; the seed's classifications, Chicago's with a CSV
 * and a share per target classification reachable from both hosts (BRONZE from ch-hv2 only).
 */
const both = (path: string) => [
  { host: 'ch-hv1', path },
  { host: 'ch-hv2', path },
];
const SEED_NY: SiteJson = {
  server: NY,
  clouds: [
    { name: 'GoldCloud1', hostGroups: ['NY-Gold'] },
    { name: 'SilverCloud1', hostGroups: ['NY-Silver'] },
  ],
  hosts: [
    { name: 'ny-hv1', hostGroup: 'NY-Gold', osVersion: '2012R2', defaultStorage: 'D:\\ny1' },
    { name: 'ny-hv2', hostGroup: 'NY-Silver', osVersion: '2012R2', defaultStorage: 'D:\\ny2' },
  ],
  logicalNetworks: [{ name: 'LogicalNetwork1 NewYork', clouds: ['GoldCloud1', 'SilverCloud1'] }],
  vmNetworks: [
    { name: 'VMNetwork1 NewYork', logicalNetwork: 'LogicalNetwork1 NewYork', subnets: [] },
    { name: 'VMNetwork2 NewYork', logicalNetwork: 'LogicalNetwork1 NewYork', subnets: [] },
  ],
  storageClassifications: ['GOUD', 'ZILVER', 'BRONS'].map((name) => ({
    name,
    locations: [{ host: 'ny-hv1', path: `C:\\${name}` }],
  })),
};
const SEED_CH: SiteJson = {
  server: CH,
  clouds: [
    { name: 'GoldCloud2', hostGroups: ['CH-All'] },
    { name: 'SilverCloud2', hostGroups: ['CH-All'] },
  ],
  hosts: [
    { name: 'ch-hv1', hostGroup: 'CH-All', osVersion: '2012R2', defaultStorage: 'D:\\ch1' },
    { name: 'ch-hv2', hostGroup: 'CH-All', osVersion: '2012R2', defaultStorage: 'D:\\ch2' },
  ],
  logicalNetworks: [
    { name: 'LogicalNetwork1 NewYork', clouds: ['GoldCloud2', 'SilverCloud2'] },
    { name: 'LogicalNetwork1 Chicago', clouds: ['GoldCloud2', 'SilverCloud2'] },
    { name: 'LogicalNetwork2Chicago', clouds: [] },
  ],
  vmNetworks: [
    {
      name: 'VMNetwork1 Chicago',
      logicalNetwork: 'LogicalNetwork1 Chicago',
      subnets: [
        { name: 'front', prefix: '10.2.9.0/24' },
        { name: 'web', prefix: '10.2.0.0/24' },
      ],
    },
    { name: 'VMNetwork2 Chicago', logicalNetwork: 'LogicalNetwork2Chicago', subnets: [] },
  ],
  storageClassifications: [
    { name: 'GOLD_TARGET', locations: [...both('C:\\TargetVolume1'), ...both('\\\\TargetShare1')] },
    {
      name: 'SILVER_TARGET',
      locations: [...both('C:\\TargetVolume2'), ...both('\\\\TargetShare2')],
    },
    { name: 'BRONZE_TARGET', locations: [{ host: 'ch-hv2', path: '\\\\TargetShare3' }] },
  ],
};
const SEED_FREE: Record<string, number> = {
  'C:\\TargetVolume1': 500 * GiB,
  '\\\\TargetShare1': 300 * GiB,
  'C:\\TargetVolume2': 200 * GiB,
  '\\\\TargetShare2': 400 * GiB,
  '\\\\TargetShare3': 900 * GiB,
  'D:\\ch1': 100 * GiB,
  'D:\\ch2': 100 * GiB,
};
const seedFree = (p: string): number => SEED_FREE[p] ?? 0;

describe('serverFabricOf', () => {
  it('gives the seed fixture’s fabric for the seed’s New York and Chicago sites', () => {
    expect([serverFabricOf(recordOf(SEED_NY)), serverFabricOf(recordOf(SEED_CH))]).toEqual(
      SEED_FABRICS,
    );
  });

  it('lets mapping apply the seed’s tables: VMNetwork2 Chicago is no target', () => {
    const fabrics = [recordOf(SEED_NY), recordOf(SEED_CH)].map(serverFabricOf);
    const maps = addMap(
      'network',
      { source: `${NY}/VMNetwork1 NewYork`, target: `${CH}/VMNetwork1 Chicago` },
      [],
      fabrics,
    );
    expect(maps).toEqual([SEED_NETWORK_MAPS[0]]);
    expect(() =>
      addMap(
        'network',
        { source: `${NY}/VMNetwork2 NewYork`, target: `${CH}/VMNetwork2 Chicago` },
        maps,
        fabrics,
      ),
    ).toThrow(/not available as a target/);
    let storage: ReturnType<typeof addMap> = [];
    for (const m of SEED_STORAGE_MAPS) {
      const text = (q: { server: string; name: string }) => `${q.server}/${q.name}`;
      storage = addMap(
        'storage',
        { source: text(m.source), target: text(m.target) },
        storage,
        fabrics,
      );
    }
    expect(storage).toEqual(SEED_STORAGE_MAPS);
  });

  it('has no networks or classifications for a record stored before fabric details', () => {
    const old = recordOf(SEED_CH);
    const bare: ServerRecord = {
      ...old,
      inventory: { clouds: old.inventory.clouds, hosts: old.inventory.hosts },
    };
    const f = serverFabricOf(bare);
    expect([f.vmNetworks, f.classifications]).toEqual([[], []]);
    expect(hostOsViews(bare, 'GoldCloud2')).toEqual([]);
    expect(targetSiteOf(bare, 'GoldCloud2', () => true).hosts).toEqual([]);
  });
});

describe('hostOsViews', () => {
  it('gives the hosts of the cloud’s host groups only (deploy/sites)', () => {
    const ny = recordOf(deploy('new-york.json'));
    expect(hostOsViews(ny, 'GoldCloud1')).toEqual([{ name: 'ny-hv1', osVersion: '2012R2' }]);
    expect(hostOsViews(ny, 'SilverCloud1')).toEqual([{ name: 'ny-hv2', osVersion: '2012R2' }]);
  });

  it('feeds checkAssociation, which refuses a cloud whose host runs another version', () => {
    const site = deploy('chicago.json');
    site.hosts[0]!.osVersion = '2016';
    const chi = recordOf(site);
    const ny = recordOf(deploy('new-york.json'));
    const view = (server: string, name: string): CloudAssociationView => ({
      server,
      name,
      policy: null,
      pairedWith: null,
      role: null,
    });
    const policy = validatePolicy({ name: 'Gold' }, 0);
    const hostsOf = (c: CloudAssociationView) => hostOsViews(c.server === NY ? ny : chi, c.name);
    expect(() =>
      checkAssociation(policy, view(NY, 'GoldCloud1'), view(CH, 'GoldCloud2'), hostsOf),
    ).toThrow(/2016: VMM-Chicago\/GoldCloud2:chi-hv1/);
    expect(
      checkAssociation(policy, view(NY, 'GoldCloud1'), view(CH, 'SilverCloud2'), hostsOf),
    ).toEqual({ hostVersion: '2012R2', alreadyAssociated: false });
  });

  it('refuses an unknown cloud', () => {
    try {
      hostOsViews(recordOf(deploy('new-york.json')), 'BronzeCloud');
      throw new Error('accepted');
    } catch (e) {
      expect(isSecondsiteError(e) && e.code).toBe('SS_NOT_FOUND');
    }
  });
});

describe('targetSiteOf', () => {
  it('describes deploy/sites Chicago’s GoldCloud2: its host, storage, networks', () => {
    const chi = recordOf(deploy('chicago.json'), (p) => p.length);
    expect(targetSiteOf(chi, 'GoldCloud2', (h) => h === 'chi-hv1')).toEqual({
      server: CH,
      cloud: 'GoldCloud2',
      hosts: [
        {
          name: 'chi-hv1',
          defaultStorage: '/srv/chi-hv1/default',
          defaultFreeBytes: '/srv/chi-hv1/default'.length,
          available: true,
        },
      ],
      classifications: [
        {
          name: 'GOLD',
          locations: [{ host: 'chi-hv1', path: '/srv/chi-hv1/gold', freeBytes: 17 }],
        },
        { name: 'SILVER', locations: [] },
      ],
      vmNetworks: [
        { name: 'VMNetwork1 Chicago', subnets: [{ name: 'web' }] },
        { name: 'VMNetwork2 Chicago', subnets: [{ name: 'db' }] },
      ],
    });
  });

  it('marks hosts the caller says are disconnected as unavailable', () => {
    const chi = recordOf(deploy('chicago.json'));
    expect(targetSiteOf(chi, 'SilverCloud2', () => false).hosts.map((h) => h.available)).toEqual([
      false,
    ]);
  });

  it('offers only networks of the cloud’s logical networks (VMNetwork2 Chicago is not)', () => {
    const site = targetSiteOf(recordOf(SEED_CH, seedFree), 'GoldCloud2', () => true);
    expect(site.vmNetworks.map((n) => n.name)).toEqual(['VMNetwork1 Chicago']);
  });

  it('lets placement put the seed’s VMs where the seed says', () => {
    const site = targetSiteOf(recordOf(SEED_CH, seedFree), 'GoldCloud2', () => true);
    const vm = (classification: string | null) => ({
      name: 'VM1',
      server: NY,
      disks: [{ index: 0, sizeBytes: 40 * GiB, classification }],
      nics: [{ network: 'VMNetwork1 NewYork', subnet: 'web' }],
    });
    const maps = { network: SEED_NETWORK_MAPS, storage: SEED_STORAGE_MAPS };
    const gold = placeReplica(vm('GOUD'), site, maps);
    expect(gold.disks[0]).toMatchObject({ path: 'C:\\TargetVolume1', reason: 'mapped' });
    expect(gold.nics).toEqual([{ network: 'VMNetwork1 Chicago', subnet: 'web', reason: 'mapped' }]);
    expect(placeReplica(vm('ZILVER'), site, maps).disks[0]?.path).toBe('\\\\TargetShare2');
    // BRONZE_TARGET lives on ch-hv2 only: the host that can reach it is chosen.
    expect(placeReplica(vm('BRONS'), site, maps)).toMatchObject({
      targetHost: 'ch-hv2',
      disks: [{ path: '\\\\TargetShare3', classification: 'BRONZE_TARGET' }],
    });
    const none = placeReplica(vm(null), site, maps);
    expect(none.disks[0]).toMatchObject({ path: 'D:\\ch1', reason: 'no-mapping' });
  });
});
