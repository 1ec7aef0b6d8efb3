import { beforeEach, describe, expect, it } from 'vitest';
import { SecondsiteError } from '../../common/errors/errors.ts';
import { FakeClock } from '../../common/time/clock.ts';
import type { PolicyInput } from '../domain/policy.ts';
import type { ServerRecord } from '../domain/server.ts';
import { InventoryService } from '../inventory/inventory-service.ts';
import { deploy, recordOf, type SiteJson } from '../inventory/site-record.fixture.ts';
import { openMemoryStore } from '../store/level-store.ts';
import { collect, keys, type Store } from '../store/store.ts';
import { PolicyService } from './policy-service.ts';

const V = 'v-1';
const NY = 'VMM-NewYork';
const CH = 'VMM-Chicago';

let store: Store;
let clock: FakeClock;
let policies: PolicyService;
let inventory: InventoryService;

/** Stores a server as registration does, with every cloud synced unless told otherwise. */
async function addServer(site: SiteJson, synced = site.clouds.map((c) => c.name)) {
  const r: ServerRecord = recordOf(site, () => 0, V);
  await store.put(keys.server(V, r.name), r);
  for (const c of r.inventory.clouds.filter((x) => synced.includes(x.name))) {
    await inventory.saveCloud(V, r.name, c);
  }
}

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
const pair = (source: string, target: string, policy = 'Gold') => ({
  policy,
  sourceCloud: source,
  targetCloud: target,
});

beforeEach(async () => {
  store = await openMemoryStore();
  clock = new FakeClock(Date.UTC(2026, 5, 1));
  policies = new PolicyService(store, clock);
  inventory = new InventoryService(store, clock);
  await addServer(deploy('new-york.json'));
  await addServer(deploy('chicago.json'));
});

describe('PolicyService.create', () => {
  it('stores a policy with R11 defaults and finds it by name in any case', async () => {
    const p = await policies.create(V, { name: 'Gold' });
    expect(p).toMatchObject({
      name: 'Gold',
      hostVersion: null,
      auth: 'certificate',
      port: 8084,
      copyFrequency: '5m',
      initial: { method: 'network' },
      createdAt: '2026-06-01T00:00:00.000Z',
    });
    expect(await policies.get(V, 'gold')).toEqual(p);
    expect(await policies.list(V)).toEqual([p]);
  });

  it('refuses a second policy of the same name (case-insensitively)', async () => {
    await policies.create(V, { name: 'Gold' });
    const e = await refusal(policies.create(V, { name: 'GOLD', copyFrequency: '30s' }));
    expect(e.code).toBe('SS_CONFLICT');
    expect((await policies.get(V, 'gold'))?.copyFrequency).toBe('5m');
  });

  it.each<[string, PolicyInput, string]>([
    ['copy frequency 1m', { copyFrequency: '1m' }, 'copyFrequency'],
    ['app-consistent 13', { retentionHours: '24', appConsistentHours: '13' }, 'appConsistentHours'],
    [
      'app-consistent = retention',
      { retentionHours: '4', appConsistentHours: '4' },
      'appConsistentHours',
    ],
    ['retention 25', { retentionHours: '25' }, 'retentionHours'],
    ['auth other', { auth: 'other' }, 'auth'],
    ['port 0', { port: '0' }, 'port'],
    ['compression maybe', { compression: 'maybe' }, 'compression'],
    ['scheduled in the past', { initial: 'scheduled:2026-05-31T00:00:00Z' }, 'initial'],
    ['offline without paths', { initial: 'offline' }, 'exportPath'],
  ])('refuses %s naming the field, storing nothing', async (_what, input, field) => {
    const before = await everything();
    const e = await refusal(policies.create(V, { name: 'Gold', ...input }));
    expect([e.code, e.details['field']]).toEqual(['SS_BAD_INPUT', field]);
    expect(await everything()).toEqual(before);
  });
});

describe('PolicyService.associate', () => {
  beforeEach(async () => {
    await policies.create(V, { name: 'Gold' });
  });

  it('pairs New York GoldCloud1 with Chicago GoldCloud2 and pins the host version', async () => {
    const a = await policies.associate(V, pair(`${NY}/GoldCloud1`, `${CH}/GoldCloud2`));
    expect(a).toEqual({
      policy: 'Gold',
      source: { server: NY, name: 'GoldCloud1' },
      target: { server: CH, name: 'GoldCloud2' },
      associatedAt: '2026-06-01T00:00:00.000Z',
    });
    expect((await policies.get(V, 'Gold'))?.hostVersion).toBe('2012R2');
    const clouds = await inventory.listClouds(V);
    expect(clouds.map((c) => [c.server, c.name, c.policy, c.pairedWith])).toEqual([
      [CH, 'GoldCloud2', 'Gold', `${NY}/GoldCloud1`],
      [CH, 'SilverCloud2', null, null],
      [NY, 'GoldCloud1', 'Gold', `${CH}/GoldCloud2`],
      [NY, 'SilverCloud1', null, null],
    ]);
  });

  it('stores the registered spelling when the caller types server names in another case', async () => {
    const a = await policies.associate(V, pair('vmm-newyork/GoldCloud1', 'VMM-CHICAGO/GoldCloud2'));
    expect([a.source.server, a.target.server]).toEqual([NY, CH]);
  });

  it('tells the lead which policy protects a primary cloud, and nothing for a secondary', async () => {
    await policies.associate(V, pair(`${NY}/GoldCloud1`, `${CH}/GoldCloud2`));
    const p = await policies.protectionOf(V, 'vmm-newyork', 'GoldCloud1');
    expect(p?.policy.name).toBe('Gold');
    expect(p?.policy.hostVersion).toBe('2012R2');
    expect([p?.source, p?.target]).toEqual([
      { server: NY, name: 'GoldCloud1' },
      { server: CH, name: 'GoldCloud2' },
    ]);
    expect(await policies.protectionOf(V, CH, 'GoldCloud2')).toBeUndefined();
    expect(await policies.protectionOf(V, NY, 'SilverCloud1')).toBeUndefined();
  });

  it('returns the same association when repeated, writing nothing', async () => {
    const first = await policies.associate(V, pair(`${NY}/GoldCloud1`, `${CH}/GoldCloud2`));
    clock.advance(60_000);
    const before = await everything();
    const again = await policies.associate(V, pair(`${NY}/GoldCloud1`, `${CH}/GoldCloud2`));
    expect(again).toEqual(first);
    expect(await everything()).toEqual(before);
  });

  it('takes several cloud pairs under one policy', async () => {
    await policies.associate(V, pair(`${NY}/GoldCloud1`, `${CH}/GoldCloud2`));
    await policies.associate(V, pair(`${NY}/SilverCloud1`, `${CH}/SilverCloud2`));
    expect((await policies.associations(V)).map((a) => a.source.name)).toEqual([
      'GoldCloud1',
      'SilverCloud1',
    ]);
  });

  it('protects between two clouds of one server', async () => {
    await policies.associate(V, pair(`${NY}/GoldCloud1`, `${NY}/SilverCloud1`));
    const clouds = await inventory.listClouds(V);
    expect(clouds.filter((c) => c.server === NY).map((c) => c.pairedWith)).toEqual([
      `${NY}/SilverCloud1`,
      `${NY}/GoldCloud1`,
    ]);
  });

  it('refuses a cloud already paired, or in another policy, storing nothing', async () => {
    await policies.create(V, { name: 'Silver' });
    await policies.associate(V, pair(`${NY}/GoldCloud1`, `${CH}/GoldCloud2`));
    const before = await everything();
    const other = await refusal(
      policies.associate(V, pair(`${NY}/GoldCloud1`, `${CH}/SilverCloud2`)),
    );
    expect(other.code).toBe('SS_CONFLICT');
    expect(other.message).toContain('already paired');
    const policy = await refusal(
      policies.associate(V, pair(`${NY}/SilverCloud1`, `${CH}/GoldCloud2`, 'Silver')),
    );
    expect(policy.code).toBe('SS_CONFLICT');
    expect(policy.message).toContain('already associated with policy "Gold"');
    expect(await everything()).toEqual(before);
  });

  it('refuses clouds whose hosts run mixed OS versions, storing nothing', async () => {
    const chi = deploy('chicago.json');
    chi.hosts[0]!.osVersion = '2016';
    await addServer(chi);
    const before = await everything();
    const e = await refusal(policies.associate(V, pair(`${NY}/GoldCloud1`, `${CH}/GoldCloud2`)));
    expect(e.code).toBe('SS_HOST_VERSION_MISMATCH');
    expect(e.message).toContain(`2016: ${CH}/GoldCloud2:chi-hv1`);
    expect(await everything()).toEqual(before);
  });

  it('keeps later pairs to the version the first pair pinned', async () => {
    await policies.associate(V, pair(`${NY}/GoldCloud1`, `${CH}/GoldCloud2`));
    const chi = deploy('chicago.json');
    chi.hosts[1]!.osVersion = '2016';
    await addServer(chi);
    const e = await refusal(
      policies.associate(V, pair(`${NY}/SilverCloud1`, `${CH}/SilverCloud2`)),
    );
    expect(e.code).toBe('SS_HOST_VERSION_MISMATCH');
    expect(e.details['wanted']).toBe('2012R2');
  });

  it.each([
    [pair(`${NY}/GoldCloud1`, `${CH}/GoldCloud2`, 'Bronze'), 'policy', /no policy named "Bronze"/],
    [pair(`VMM-Boston/GoldCloud1`, `${CH}/GoldCloud2`), 'sourceCloud', /no server named/],
    [pair(`${NY}/GoldCloud1`, `${CH}/BronzeCloud`), 'targetCloud', /known: GoldCloud2/],
    [pair(`${NY}-GoldCloud1`, `${CH}/GoldCloud2`), 'sourceCloud', /SERVER\/NAME/],
    [pair(`${NY}/GoldCloud1`, `${NY}/GoldCloud1`), 'targetCloud', /also the source/],
  ])('refuses %j as bad input naming %s', async (input, field, message) => {
    const before = await everything();
    const e = await refusal(policies.associate(V, input));
    expect([e.code, e.details['field']]).toEqual(['SS_BAD_INPUT', field]);
    expect(e.message).toMatch(message);
    expect(await everything()).toEqual(before);
  });

  it('refuses a cloud not synced into the vault yet', async () => {
    await store.del(keys.cloud(V, CH, 'GoldCloud2'));
    const e = await refusal(policies.associate(V, pair(`${NY}/GoldCloud1`, `${CH}/GoldCloud2`)));
    expect(e.code).toBe('SS_CONFLICT');
    expect(e.message).toContain('cloud sync');
  });

  it('lets one of two racing associations for the same secondary cloud win', async () => {
    const results = await Promise.allSettled([
      policies.associate(V, pair(`${NY}/GoldCloud1`, `${CH}/GoldCloud2`)),
      policies.associate(V, pair(`${NY}/SilverCloud1`, `${CH}/GoldCloud2`)),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(await policies.associations(V)).toHaveLength(1);
  });
});

describe('PolicyService.update', () => {
  it('stores the changed settings with updatedAt; the same values again store nothing', async () => {
    await policies.create(V, { name: 'Gold', copyFrequency: '30s' });
    clock.advance(1000);
    const { record, update } = await policies.update(V, 'gold', { auth: 'kerberos' });
    expect(update).toMatchObject({ changed: ['auth', 'port'], repair: true });
    expect(record).toMatchObject({ name: 'Gold', auth: 'kerberos', port: 8083 });
    expect(record.updatedAt).toBe(new Date(Date.UTC(2026, 5, 1) + 1000).toISOString());
    expect(await policies.get(V, 'Gold')).toEqual(record);
    const before = await everything();
    clock.advance(1000);
    const again = await policies.update(V, 'Gold', { auth: 'kerberos' });
    expect(again.update.changed).toEqual([]);
    expect(await everything()).toEqual(before);
  });

  it('refuses an unknown policy (naming it) and a bad value, storing nothing', async () => {
    await policies.create(V, { name: 'Gold' });
    const before = await everything();
    const unknown = await refusal(policies.update(V, 'Silver', { auth: 'kerberos' }));
    expect([unknown.code, unknown.details['field']]).toEqual(['SS_BAD_INPUT', 'name']);
    const bad = await refusal(policies.update(V, 'Gold', { retentionHours: '25' }));
    expect([bad.code, bad.details['field']]).toEqual(['SS_BAD_INPUT', 'retentionHours']);
    expect(await everything()).toEqual(before);
  });
});
