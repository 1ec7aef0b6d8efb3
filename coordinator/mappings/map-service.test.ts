import { beforeEach, describe, expect, it } from 'vitest';
import { SecondsiteError } from '../../common/errors/errors.ts';
import { deploy, recordOf } from '../inventory/site-record.fixture.ts';
import { openMemoryStore } from '../store/level-store.ts';
import { collect, keys, type Store } from '../store/store.ts';
import { MapService, type MapChange } from './map-service.ts';

const V = 'v-1';
const NY = 'VMM-NewYork';
const CH = 'VMM-Chicago';

let store: Store;
let maps: MapService;
let changes: MapChange[];

async function refusal(p: Promise<unknown>): Promise<SecondsiteError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SecondsiteError) return e;
    throw e;
  }
  throw new Error('accepted');
}

const everything = () => collect(store, '');
const net = { source: `${NY}/VMNetwork1 NewYork`, target: `${CH}/VMNetwork1 Chicago` };

beforeEach(async () => {
  store = await openMemoryStore();
  for (const site of ['new-york.json', 'chicago.json']) {
    const r = recordOf(deploy(site), () => 0, V);
    await store.put(keys.server(V, r.name), r);
  }
  maps = new MapService(store);
  changes = [];
  maps.onChange((c) => changes.push(c));
});

describe('network maps', () => {
  it('creates, lists and deletes a map between the two sites', async () => {
    const m = await maps.create(V, 'network', net);
    expect(m).toEqual({
      source: { server: NY, name: 'VMNetwork1 NewYork' },
      target: { server: CH, name: 'VMNetwork1 Chicago' },
    });
    expect(await maps.list(V, 'network')).toEqual([m]);
    expect(await maps.list(V, 'storage')).toEqual([]);
    expect(await maps.delete(V, 'network', net)).toEqual(m);
    expect(await maps.list(V, 'network')).toEqual([]);
    expect(changes.map((c) => [c.kind, c.change])).toEqual([
      ['network', 'created'],
      ['network', 'deleted'],
    ]);
  });

  it('stores the registered server spelling and takes a repeat create as a no-op', async () => {
    const m = await maps.create(V, 'network', {
      source: 'vmm-newyork/VMNetwork1 NewYork',
      target: 'VMM-CHICAGO/VMNetwork1 Chicago',
    });
    expect([m.source.server, m.target.server]).toEqual([NY, CH]);
    expect(await maps.create(V, 'network', net)).toEqual(m);
    expect(await maps.list(V, 'network')).toHaveLength(1);
    expect(changes).toHaveLength(1);
  });

  it('keeps maps of several sources, and maps within one server', async () => {
    await maps.create(V, 'network', net);
    await maps.create(V, 'network', {
      source: `${NY}/VMNetwork2 NewYork`,
      target: `${NY}/VMNetwork1 NewYork`,
    });
    await maps.create(V, 'network', {
      source: `${CH}/VMNetwork1 Chicago`,
      target: `${NY}/VMNetwork1 NewYork`,
    });
    expect((await maps.list(V, 'network')).map((m) => m.source.name)).toEqual([
      'VMNetwork1 Chicago',
      'VMNetwork1 NewYork',
      'VMNetwork2 NewYork',
    ]);
  });

  it('refuses a second map for one source until the first is deleted', async () => {
    await maps.create(V, 'network', net);
    const other = { ...net, target: `${CH}/VMNetwork2 Chicago` };
    const e = await refusal(maps.create(V, 'network', other));
    expect(e.code).toBe('SS_CONFLICT');
    await maps.delete(V, 'network', net);
    expect((await maps.create(V, 'network', other)).target.name).toBe('VMNetwork2 Chicago');
  });

  it.each([
    [{ ...net, target: `${CH}/VMNetwork9 Chicago` }, 'target', /no VM network "VMNetwork9/],
    [{ ...net, source: 'VMM-Boston/VMNetwork1 NewYork' }, 'source', /no server named/],
    [{ ...net, source: 'VMNetwork1 NewYork' }, 'source', /SERVER\/NAME/],
    [{ ...net, target: `${CH}/GOLD` }, 'target', /no VM network "GOLD"/],
  ])('refuses %j as bad input naming %s, storing nothing', async (input, field, message) => {
    const before = await everything();
    const e = await refusal(maps.create(V, 'network', input));
    expect([e.code, e.details['field']]).toEqual(['SS_BAD_INPUT', field]);
    expect(e.message).toMatch(message);
    expect(await everything()).toEqual(before);
    expect(changes).toEqual([]);
  });

  it('refuses to delete a map that does not exist', async () => {
    await maps.create(V, 'network', net);
    const e = await refusal(
      maps.delete(V, 'network', { ...net, target: `${CH}/VMNetwork2 Chicago` }),
    );
    expect(e.code).toBe('SS_NOT_FOUND');
    expect(await maps.list(V, 'network')).toHaveLength(1);
  });

  it('keeps a vault’s maps to itself', async () => {
    await maps.create(V, 'network', net);
    expect(await maps.list('v-2', 'network')).toEqual([]);
    const e = await refusal(maps.create('v-2', 'network', net));
    expect(e.details['field']).toBe('source');
  });
});

describe('storage maps', () => {
  it('maps classifications and refuses an unknown one', async () => {
    const m = await maps.create(V, 'storage', { source: `${NY}/GOLD`, target: `${CH}/GOLD` });
    expect(m.target).toEqual({ server: CH, name: 'GOLD' });
    const e = await refusal(
      maps.create(V, 'storage', { source: `${NY}/SILVER`, target: `${CH}/BRONZE` }),
    );
    expect([e.code, e.details['field']]).toEqual(['SS_BAD_INPUT', 'target']);
    expect(await maps.list(V, 'storage')).toEqual([m]);
    expect(await maps.list(V, 'network')).toEqual([]);
  });
});
