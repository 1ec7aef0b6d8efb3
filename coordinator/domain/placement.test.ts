import { describe, expect, it } from 'vitest';
import type { SecondsiteError } from '../../common/errors/errors.ts';
import type { NetworkMap } from './mapping.ts';
import {
  describeNic,
  placeReplica,
  planNics,
  replanNics,
  type SourceVm,
  type TargetSite,
} from './placement.ts';
import { CH, NY, SEED_NETWORK_MAPS, SEED_STORAGE_MAPS } from './seed-fabric.fixture.ts';

const GiB = 1024 ** 3;
const maps = { network: SEED_NETWORK_MAPS, storage: SEED_STORAGE_MAPS };

// Chicago's storage as in the seed's "Meerdere opslaglocaties" table: every target
// classification has a CSV and a file share, both reachable from both hosts (listed per host).
// BRONZE_TARGET (TargetShare3, first table) is reachable from ch-hv2 only.
const both = (path: string, freeBytes: number) => [
  { host: 'ch-hv1', path, freeBytes },
  { host: 'ch-hv2', path, freeBytes },
];
const chicago = (over: Partial<TargetSite> = {}): TargetSite => ({
  server: CH,
  hosts: [
    { name: 'ch-hv1', defaultStorage: 'D:\\Hyper-V\\ch-hv1' },
    { name: 'ch-hv2', defaultStorage: 'D:\\Hyper-V\\ch-hv2' },
  ],
  classifications: [
    {
      name: 'GOLD_TARGET',
      locations: [
        ...both('C:\\ClusterStorage\\TargetVolume1', 500 * GiB),
        ...both('\\\\FileServer\\TargetShare1', 300 * GiB),
      ],
    },
    {
      name: 'SILVER_TARGET',
      locations: [
        ...both('C:\\ClusterStorage\\TargetVolume2', 200 * GiB),
        ...both('\\\\FileServer\\TargetShare2', 400 * GiB),
      ],
    },
    {
      name: 'BRONZE_TARGET',
      locations: [{ host: 'ch-hv2', path: '\\\\FileServer\\TargetShare3', freeBytes: 900 * GiB }],
    },
  ],
  vmNetworks: [
    { name: 'VMNetwork1 Chicago', subnets: [{ name: 'front' }, { name: 'web' }] },
    { name: 'VMNetwork2 Chicago', subnets: [] },
    { name: 'VMNetwork3 Chicago', subnets: [{ name: 'web' }] },
  ],
  ...over,
});

const vm = (name: string, disks: SourceVm['disks'], nics: SourceVm['nics'] = []): SourceVm => ({
  name,
  server: NY,
  disks,
  nics,
});
const disk = (classification: string | null, sizeGiB = 40, index = 0) => ({
  index,
  sizeBytes: sizeGiB * GiB,
  classification,
});

describe('storage placement: the seed’s VM1–VM5 table', () => {
  // VM1/VM2 on GOUD (a CSV and a share), VM3/VM4 on ZILVER, VM5 on storage with no
  // classification. The seed says "both GOLD_TARGET" locations qualify; the best one (most free
  // space) is chosen: TargetVolume1 for gold, TargetShare2 for silver.
  it.each([
    ['VM1', 'GOUD', 'GOLD_TARGET', 'C:\\ClusterStorage\\TargetVolume1', 'mapped'],
    ['VM2', 'GOUD', 'GOLD_TARGET', 'C:\\ClusterStorage\\TargetVolume1', 'mapped'],
    ['VM3', 'ZILVER', 'SILVER_TARGET', '\\\\FileServer\\TargetShare2', 'mapped'],
    ['VM4', 'ZILVER', 'SILVER_TARGET', '\\\\FileServer\\TargetShare2', 'mapped'],
    ['VM5', null, null, 'D:\\Hyper-V\\ch-hv1', 'no-mapping'],
  ])('%s on %s → %s', (name, source, classification, path, reason) => {
    const p = placeReplica(vm(name, [disk(source)]), chicago(), maps);
    expect(p.disks).toEqual([{ index: 0, path, classification, reason }]);
  });
});

describe('storage placement rules (R9)', () => {
  it('chooses the location with the most free space', () => {
    const site = chicago();
    const gold = site.classifications[0]!;
    const fuller = {
      ...site,
      classifications: [
        {
          name: 'GOLD_TARGET',
          locations: gold.locations.map((l) => ({
            ...l,
            freeBytes: l.path.includes('Volume') ? 100 * GiB : 300 * GiB,
          })),
        },
      ],
    };
    expect(placeReplica(vm('VM1', [disk('GOUD')]), fuller, maps).disks[0]!.path).toBe(
      '\\\\FileServer\\TargetShare1',
    );
  });

  it('counts space used by earlier disks of the same VM', () => {
    const site = chicago({
      hosts: [{ name: 'ch-hv1', defaultStorage: 'D:\\d' }],
      classifications: [
        {
          name: 'GOLD_TARGET',
          locations: [
            { host: 'ch-hv1', path: 'A', freeBytes: 100 * GiB },
            { host: 'ch-hv1', path: 'B', freeBytes: 80 * GiB },
          ],
        },
      ],
    });
    const p = placeReplica(
      vm('VM1', [disk('GOUD', 60, 0), disk('GOUD', 60, 1), disk('GOUD', 60, 2)]),
      site,
      maps,
    );
    expect(p.disks.map((d) => [d.index, d.path, d.reason])).toEqual([
      [0, 'A', 'mapped'],
      [1, 'B', 'mapped'],
      [2, 'D:\\d', 'no-fitting-location'],
    ]);
  });

  it('uses the default location when no mapped location fits the disk', () => {
    const p = placeReplica(vm('Big', [disk('GOUD', 1000)]), chicago(), maps);
    expect(p.disks[0]).toEqual({
      index: 0,
      path: 'D:\\Hyper-V\\ch-hv1',
      classification: null,
      reason: 'no-fitting-location',
    });
  });

  it('uses the default location when the classification is unmapped', () => {
    const p = placeReplica(vm('VM', [disk('GOUD')]), chicago(), { network: [], storage: [] });
    expect(p.disks[0]!.reason).toBe('no-mapping');
  });

  it('ignores a storage map that points at another server', () => {
    const other = [
      {
        source: { server: NY, name: 'GOUD' },
        target: { server: 'VMM-Boston', name: 'GOLD_TARGET' },
      },
    ];
    const p = placeReplica(vm('VM', [disk('GOUD')]), chicago(), { network: [], storage: other });
    expect(p.disks[0]!.reason).toBe('no-mapping');
  });

  it('places the VM on a host that can reach the mapped classification', () => {
    const p = placeReplica(vm('Bronze', [disk('BRONS')]), chicago(), maps);
    expect(p.targetHost).toBe('ch-hv2');
    expect(p.disks[0]!.path).toBe('\\\\FileServer\\TargetShare3');
  });

  it('prefers the host placing more disks on mapped storage', () => {
    // Gold reaches both hosts, bronze only ch-hv2: ch-hv2 places both disks on mapped storage.
    const p = placeReplica(
      vm('Mixed', [disk('GOUD', 10, 0), disk('BRONS', 10, 1)]),
      chicago(),
      maps,
    );
    expect(p.targetHost).toBe('ch-hv2');
    expect(p.disks.map((d) => d.reason)).toEqual(['mapped', 'mapped']);
  });

  it('breaks ties by free space left in mapped locations, then by host name', () => {
    const tie = placeReplica(vm('VM1', [disk('GOUD')]), chicago(), maps);
    expect(tie.targetHost).toBe('ch-hv1');
    const local = chicago({
      classifications: [
        {
          name: 'GOLD_TARGET',
          locations: [
            { host: 'ch-hv1', path: 'E:\\gold', freeBytes: 100 * GiB },
            { host: 'ch-hv2', path: 'F:\\gold', freeBytes: 200 * GiB },
          ],
        },
      ],
    });
    expect(placeReplica(vm('VM1', [disk('GOUD')]), local, maps).targetHost).toBe('ch-hv2');
    const reversed = chicago({ hosts: [...chicago().hosts].reverse() });
    expect(placeReplica(vm('VM5', [disk(null)]), reversed, maps).targetHost).toBe('ch-hv1');
  });

  it('skips unavailable hosts and hosts without a default location when one is needed', () => {
    const site = chicago({
      hosts: [
        { name: 'ch-hv1', defaultStorage: 'D:\\1', available: false },
        { name: 'ch-hv2', defaultStorage: null },
        { name: 'ch-hv3', defaultStorage: 'D:\\3' },
      ],
    });
    expect(placeReplica(vm('VM5', [disk(null)]), site, maps).targetHost).toBe('ch-hv3');
    // A host without a default location still takes a VM whose disks all go to mapped storage.
    expect(placeReplica(vm('Bronze', [disk('BRONS')]), site, maps).targetHost).toBe('ch-hv2');
  });

  it('refuses when no host can take the replica', () => {
    const noDefault = chicago({ hosts: [{ name: 'ch-hv1', defaultStorage: null }] });
    const e = (() => {
      try {
        placeReplica(vm('VM5', [disk(null)]), noDefault, maps);
      } catch (err) {
        return err as SecondsiteError;
      }
      throw new Error('expected a refusal');
    })();
    expect(e.code).toBe('SS_CONFLICT');
    expect(e.message).toContain('default storage location');
    expect(() => placeReplica(vm('VM5', [disk(null)]), chicago({ hosts: [] }), maps)).toThrow(
      /no hosts/,
    );
  });

  it('returns a frozen placement', () => {
    const p = placeReplica(
      vm('VM1', [disk('GOUD')], [{ network: 'VMNetwork1 NewYork', subnet: 'web' }]),
      chicago(),
      maps,
    );
    expect(Object.isFrozen(p) && Object.isFrozen(p.disks[0]) && Object.isFrozen(p.nics[0])).toBe(
      true,
    );
  });
});

describe('replica NICs: the seed’s network table (R8)', () => {
  it.each([
    ['VMNetwork1 NewYork', 'web', 'VMNetwork1 Chicago', 'web', 'mapped'],
    ['VMNetwork1 NewYork', 'db', 'VMNetwork1 Chicago', 'front', 'mapped'],
    ['VMNetwork1 NewYork', null, 'VMNetwork1 Chicago', 'front', 'mapped'],
    ['VMNetwork2 NewYork', 'web', null, null, 'unmapped'],
    [null, null, null, null, 'source-disconnected'],
  ])('%s/%s → %s/%s (%s)', (network, subnet, tNetwork, tSubnet, reason) => {
    const nics = planNics(vm('VM1', [], [{ network, subnet }]), chicago(), SEED_NETWORK_MAPS);
    expect(nics).toEqual([{ network: tNetwork, subnet: tSubnet, reason }]);
  });

  it('connects to a mapped network without subnets with no subnet', () => {
    const toTwo: NetworkMap[] = [
      {
        source: { server: NY, name: 'VMNetwork2 NewYork' },
        target: { server: CH, name: 'VMNetwork2 Chicago' },
      },
    ];
    expect(
      planNics(vm('VM', [], [{ network: 'VMNetwork2 NewYork', subnet: 'web' }]), chicago(), toTwo),
    ).toEqual([{ network: 'VMNetwork2 Chicago', subnet: null, reason: 'mapped' }]);
  });

  it('leaves a NIC unconnected when the mapped target network is gone', () => {
    const site = chicago({ vmNetworks: [] });
    expect(
      planNics(
        vm('VM', [], [{ network: 'VMNetwork1 NewYork', subnet: 'web' }]),
        site,
        SEED_NETWORK_MAPS,
      ),
    ).toEqual([{ network: null, subnet: null, reason: 'target-network-missing' }]);
  });

  it('describes NICs for messages', () => {
    expect(
      describeNic(CH, { network: 'VMNetwork1 Chicago', subnet: 'web', reason: 'mapped' }),
    ).toBe('VMM-Chicago/VMNetwork1 Chicago (subnet web)');
    expect(describeNic(CH, { network: null, subnet: null, reason: 'unmapped' })).toBe(
      'not connected',
    );
  });
});

describe('replanNics: changing a network map reconnects existing replicas (R8)', () => {
  const source = vm(
    'VM1',
    [],
    [
      { network: 'VMNetwork1 NewYork', subnet: 'web' },
      { network: 'VMNetwork2 NewYork', subnet: 'web' },
    ],
  );
  const current = [
    { network: 'VMNetwork1 Chicago', subnet: 'web' },
    { network: null, subnet: null },
  ];

  it('reports nothing to change while the maps are the same', () => {
    expect(replanNics(source, chicago(), SEED_NETWORK_MAPS, current).changed).toEqual([]);
  });

  it('moves the replica to the newly mapped network', () => {
    const changedMap: NetworkMap[] = [
      {
        source: { server: NY, name: 'VMNetwork1 NewYork' },
        target: { server: CH, name: 'VMNetwork3 Chicago' },
      },
    ];
    const r = replanNics(source, chicago(), changedMap, current);
    expect(r.changed).toEqual([0]);
    expect(r.nics[0]).toEqual({ network: 'VMNetwork3 Chicago', subnet: 'web', reason: 'mapped' });
  });

  it('connects a replica whose network gains a map, and disconnects one whose map is deleted', () => {
    const both: NetworkMap[] = [
      ...SEED_NETWORK_MAPS,
      {
        source: { server: NY, name: 'VMNetwork2 NewYork' },
        target: { server: CH, name: 'VMNetwork3 Chicago' },
      },
    ];
    expect(replanNics(source, chicago(), both, current).changed).toEqual([1]);
    const none = replanNics(source, chicago(), [], current);
    expect(none.changed).toEqual([0]);
    expect(none.nics[0]).toEqual({ network: null, subnet: null, reason: 'unmapped' });
  });

  it('treats a NIC the replica lacks as changed', () => {
    expect(replanNics(source, chicago(), SEED_NETWORK_MAPS, []).changed).toEqual([0, 1]);
  });
});
