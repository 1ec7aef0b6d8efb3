import { describe, expect, it } from 'vitest';
import { SecondsiteError, exitCodeFor } from '../../common/errors/errors.ts';
import {
  addMap,
  mappedTarget,
  parseQualified,
  pickSubnet,
  removeMap,
  targetNetworksFor,
  type MapKind,
  type MapInput,
  type ResourceMap,
} from './mapping.ts';
import { CH, NY, SEED_FABRICS, SEED_NETWORK_MAPS } from './seed-fabric.fixture.ts';

function refusal(f: () => unknown): SecondsiteError {
  try {
    f();
  } catch (e) {
    if (e instanceof SecondsiteError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

const add = (kind: MapKind, input: MapInput, existing: readonly ResourceMap[] = []) =>
  addMap(kind, input, existing, SEED_FABRICS);

describe('network maps: the seed’s New York / Chicago table', () => {
  it('maps VMNetwork1 NewYork → VMNetwork1 Chicago and back', () => {
    let maps = add('network', {
      source: `${NY}/VMNetwork1 NewYork`,
      target: `${CH}/VMNetwork1 Chicago`,
    });
    maps = add(
      'network',
      { source: `${CH}/VMNetwork1 Chicago`, target: `${NY}/VMNetwork1 NewYork` },
      maps,
    );
    expect(maps).toEqual(SEED_NETWORK_MAPS);
    expect(Object.isFrozen(maps)).toBe(true);
  });

  it('leaves VMNetwork2 NewYork and VMNetwork2 Chicago unmapped', () => {
    expect(mappedTarget(SEED_NETWORK_MAPS, { server: NY, name: 'VMNetwork2 NewYork' })).toBeNull();
    expect(mappedTarget(SEED_NETWORK_MAPS, { server: CH, name: 'VMNetwork2 Chicago' })).toBeNull();
    expect(
      mappedTarget(SEED_NETWORK_MAPS, { server: 'vmm-newyork', name: 'VMNetwork1 NewYork' }),
    ).toEqual({
      server: CH,
      name: 'VMNetwork1 Chicago',
    });
  });

  // "Doelnetwerken": VMNetwork1 Chicago is available to GoldCloud2 and SilverCloud2,
  // VMNetwork2 Chicago (on LogicalNetwork2Chicago) is not.
  it.each([
    ['GoldCloud2', ['VMNetwork1 Chicago']],
    ['SilverCloud2', ['VMNetwork1 Chicago']],
    ['NoSuchCloud', []],
  ])('target networks for %s', (cloud, expected) => {
    const chicago = SEED_FABRICS.find((f) => f.server === CH)!;
    expect(targetNetworksFor(chicago, cloud)).toEqual(expected);
  });

  it('refuses VMNetwork2 Chicago as a target: no Chicago cloud uses its logical network', () => {
    const e = refusal(() =>
      add('network', { source: `${NY}/VMNetwork2 NewYork`, target: `${CH}/VMNetwork2 Chicago` }),
    );
    expect(e.code).toBe('SS_BAD_INPUT');
    expect(e.details['field']).toBe('target');
    expect(e.message).toContain('LogicalNetwork2Chicago');
  });

  it('refuses unknown networks and servers with exit 2, listing what exists', () => {
    const unknownTarget = refusal(() =>
      add('network', { source: `${NY}/VMNetwork1 NewYork`, target: `${CH}/VMNetwork9` }),
    );
    expect(exitCodeFor(unknownTarget)).toBe(2);
    expect(unknownTarget.message).toBe(
      'target: no VM network "VMNetwork9" on VMM-Chicago (known: VMNetwork1 Chicago, VMNetwork2 Chicago)',
    );
    const unknownSource = refusal(() =>
      add('network', { source: `${NY}/Nope`, target: `${CH}/VMNetwork1 Chicago` }),
    );
    expect(unknownSource.details['field']).toBe('source');
    const unknownServer = refusal(() =>
      add('network', { source: 'VMM-Boston/X', target: `${CH}/VMNetwork1 Chicago` }),
    );
    expect(unknownServer.message).toContain('no server named "VMM-Boston"');
  });

  it('refuses a second map for the same source, and accepts the same map again', () => {
    const maps = add('network', {
      source: `${NY}/VMNetwork1 NewYork`,
      target: `${CH}/VMNetwork1 Chicago`,
    });
    expect(
      add(
        'network',
        { source: `vmm-newyork/VMNetwork1 NewYork`, target: `${CH}/VMNetwork1 Chicago` },
        maps,
      ),
    ).toBe(maps);
    const e = refusal(() =>
      add(
        'network',
        { source: `${NY}/VMNetwork1 NewYork`, target: `${NY}/VMNetwork2 NewYork` },
        maps,
      ),
    );
    expect(e.code).toBe('SS_CONFLICT');
    expect(e.message).toContain('already mapped to VMM-Chicago/VMNetwork1 Chicago');
  });

  it('maps within one server (single-server protection)', () => {
    const maps = add('network', {
      source: `${NY}/VMNetwork1 NewYork`,
      target: `${NY}/VMNetwork2 NewYork`,
    });
    expect(maps[0]!.target).toEqual({ server: NY, name: 'VMNetwork2 NewYork' });
  });

  it('stores the registered spelling of server names', () => {
    const maps = add('network', {
      source: 'vmm-newyork/VMNetwork1 NewYork',
      target: 'VMM-CHICAGO/VMNetwork1 Chicago',
    });
    expect(maps[0]).toEqual(SEED_NETWORK_MAPS[0]);
  });

  it('deletes a map, and refuses deleting one that does not exist', () => {
    const input = { source: `${NY}/VMNetwork1 NewYork`, target: `${CH}/VMNetwork1 Chicago` };
    expect(removeMap('network', input, SEED_NETWORK_MAPS)).toEqual([SEED_NETWORK_MAPS[1]]);
    expect(refusal(() => removeMap('network', input, [])).code).toBe('SS_NOT_FOUND');
  });
});

describe('storage maps: the seed’s classification table', () => {
  it.each([
    ['GOUD', 'GOLD_TARGET'],
    ['ZILVER', 'SILVER_TARGET'],
    ['BRONS', 'BRONZE_TARGET'],
  ])('maps %s → %s', (source, target) => {
    const maps = add('storage', { source: `${NY}/${source}`, target: `${CH}/${target}` });
    expect(maps).toEqual([
      { source: { server: NY, name: source }, target: { server: CH, name: target } },
    ]);
  });

  it('refuses unknown classifications on either side', () => {
    const t = refusal(() => add('storage', { source: `${NY}/GOUD`, target: `${CH}/PLATINUM` }));
    expect(t.message).toBe(
      'target: no storage classification "PLATINUM" on VMM-Chicago (known: GOLD_TARGET, SILVER_TARGET, BRONZE_TARGET)',
    );
    expect(
      refusal(() => add('storage', { source: `${NY}/GOLD_TARGET`, target: `${CH}/GOLD_TARGET` }))
        .details['field'],
    ).toBe('source');
  });

  it('refuses a second map for one classification', () => {
    const maps = add('storage', { source: `${NY}/GOUD`, target: `${CH}/GOLD_TARGET` });
    expect(
      refusal(() => add('storage', { source: `${NY}/GOUD`, target: `${CH}/SILVER_TARGET` }, maps))
        .code,
    ).toBe('SS_CONFLICT');
  });
});

describe('parseQualified and pickSubnet', () => {
  it('splits SERVER/NAME and refuses anything else', () => {
    expect(parseQualified('source', 'VMM-NewYork/VMNetwork1 NewYork')).toEqual({
      server: NY,
      name: 'VMNetwork1 NewYork',
    });
    for (const bad of ['VMNetwork1', '/x', 'x/', 'a/b/c']) {
      expect(refusal(() => parseQualified('source', bad)).details['field']).toBe('source');
    }
  });

  it('picks the subnet of the same name, else the first, else none', () => {
    const subnets = [{ name: 'front' }, { name: 'web' }];
    expect(pickSubnet('web', subnets)).toBe('web');
    expect(pickSubnet('db', subnets)).toBe('front');
    expect(pickSubnet(null, subnets)).toBe('front');
    expect(pickSubnet('web', [])).toBeNull();
  });
});
