import { describe, expect, it } from 'vitest';
import { failbackNic, type FailbackNicInput } from './failback-network.ts';
import type { NetworkMap } from './mapping.ts';
import { CH, NY, SEED_NETWORK_MAPS } from './seed-fabric.fixture.ts';

// The seed's failback example: VM1 on VMNetwork1 NewYork (mapped to VMNetwork1 Chicago);
// VM2, its replica, on VMNetwork1 Chicago. Maps back go Chicago → New York.
const ny = (name: string) => ({ server: NY, name });
const ch = (name: string) => ({ server: CH, name });
const reverse: readonly NetworkMap[] = SEED_NETWORK_MAPS.filter((m) => m.source.server === CH);
const primaryNetworks = [
  { name: 'VMNetwork1 NewYork', subnets: [{ name: 'web' }] },
  { name: 'VMNetwork2 NewYork', subnets: [{ name: 'front' }, { name: 'web' }] },
  { name: 'VMNetwork3 NewYork', subnets: [{ name: 'lan' }] },
];
const seed = (over: Partial<FailbackNicInput>): FailbackNicInput => ({
  primary: { network: ny('VMNetwork1 NewYork'), subnet: 'web' },
  replicaAtFailover: { network: ch('VMNetwork1 Chicago') },
  replicaNow: { network: ch('VMNetwork1 Chicago'), subnet: 'web' },
  reverseMaps: reverse,
  primaryNetworks,
  ...over,
});

describe('failback network behaviour: the original’s table (R10), one test per row', () => {
  it('row 1: VM2’s network unchanged after failover → VM1 stays on its source network', () => {
    expect(failbackNic(seed({}))).toEqual({
      network: ny('VMNetwork1 NewYork'),
      subnet: 'web',
      rule: 'unchanged',
    });
  });

  it('row 2: VM2 disconnected after failover → VM1 is disconnected', () => {
    expect(failbackNic(seed({ replicaNow: { network: null, subnet: null } }))).toEqual({
      network: null,
      subnet: null,
      rule: 'replica-disconnected',
    });
  });

  it('row 3: VM2 moved to VMNetwork2 Chicago, which is not mapped → VM1 is disconnected', () => {
    const r = failbackNic(
      seed({ replicaNow: { network: ch('VMNetwork2 Chicago'), subnet: 'web' } }),
    );
    expect(r).toEqual({ network: null, subnet: null, rule: 'moved-unmapped' });
  });

  it('row 4: the map of VMNetwork1 Chicago changed → VM1 joins the newly mapped network', () => {
    const changed: NetworkMap[] = [
      { source: ch('VMNetwork1 Chicago'), target: ny('VMNetwork2 NewYork') },
    ];
    // The subnet-name rule applies on the new network: "web" exists there.
    expect(failbackNic(seed({ reverseMaps: changed }))).toEqual({
      network: ny('VMNetwork2 NewYork'),
      subnet: 'web',
      rule: 'mapping-changed',
    });
  });
});

describe('failback network behaviour: cases the table implies', () => {
  it('a replica moved to a network that maps back follows that map, first subnet if no name matches', () => {
    const maps: NetworkMap[] = [
      ...reverse,
      { source: ch('VMNetwork2 Chicago'), target: ny('VMNetwork3 NewYork') },
    ];
    const r = failbackNic(
      seed({ reverseMaps: maps, replicaNow: { network: ch('VMNetwork2 Chicago'), subnet: 'web' } }),
    );
    expect(r).toEqual({ network: ny('VMNetwork3 NewYork'), subnet: 'lan', rule: 'moved-mapped' });
  });

  it('an unchanged replica with no map back keeps the primary where it was', () => {
    expect(failbackNic(seed({ reverseMaps: [] })).rule).toBe('unchanged');
  });

  it('a primary NIC that had no network, whose replica stayed unconnected, stays unconnected', () => {
    const r = failbackNic(
      seed({
        primary: null,
        replicaAtFailover: { network: null },
        replicaNow: { network: null, subnet: null },
      }),
    );
    expect(r).toEqual({ network: null, subnet: null, rule: 'replica-disconnected' });
  });

  it('a primary NIC that had no network follows the map back once its replica is connected', () => {
    const r = failbackNic(seed({ primary: null, replicaAtFailover: { network: null } }));
    expect(r).toEqual({ network: ny('VMNetwork1 NewYork'), subnet: 'web', rule: 'moved-mapped' });
  });

  it('a replica NIC that had no network at failover and has one now counts as moved', () => {
    const r = failbackNic(seed({ replicaAtFailover: { network: null } }));
    expect(r).toEqual({ network: ny('VMNetwork1 NewYork'), subnet: 'web', rule: 'moved-mapped' });
  });

  it('compares server names case-insensitively', () => {
    const r = failbackNic(
      seed({
        replicaNow: {
          network: { server: 'vmm-chicago', name: 'VMNetwork1 Chicago' },
          subnet: 'web',
        },
      }),
    );
    expect(r.rule).toBe('unchanged');
  });
});
