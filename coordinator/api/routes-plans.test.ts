import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newItem } from '../domain/protection.ts';
import { PlanService } from '../plans/plan-service.ts';
import { PolicyService } from '../policies/policy-service.ts';
import { ItemRepo } from '../replication/item-repo.ts';
import { collect, type Store } from '../store/store.ts';
import { headers, routeLab, type RouteLab } from './route-test.fixture.ts';

const NY = 'VMM-NewYork';
const CH = 'VMM-Chicago';

let lab: RouteLab;
let store: Store;
let app: FastifyInstance;

beforeEach(async () => {
  let policies: PolicyService | undefined;
  let items: ItemRepo | undefined;
  lab = await routeLab(({ store, clock }) => {
    policies = new PolicyService(store, clock);
    items = new ItemRepo(store);
    return { plans: new PlanService({ store, clock, items, pairs: policies }) };
  });
  ({ store, app } = lab);
  const vault = lab.vault;
  await policies!.create(vault.id, { name: 'Gold' });
  await policies!.associate(vault.id, {
    policy: 'Gold',
    sourceCloud: `${NY}/GoldCloud1`,
    targetCloud: `${CH}/GoldCloud2`,
  });
  for (const vm of ['db1', 'app1', 'web1']) {
    await items!.put(
      newItem({
        vaultId: vault.id,
        vm,
        policy: 'Gold',
        sourceServer: NY,
        sourceCloud: 'GoldCloud1',
        sourceHost: 'ny-hv1',
        targetServer: CH,
        targetCloud: 'GoldCloud2',
        epoch: 1,
        now: 0,
      }),
    );
  }
});

afterEach(() => lab.close());

const post = (url: string, payload: unknown) =>
  app.inject({
    method: 'POST',
    url: `/api/v1/vaults/prod${url}`,
    headers,
    payload: payload as object,
  });
const get = (url: string) =>
  app.inject({ method: 'GET', url: `/api/v1/vaults/prod${url}`, headers });

const create = () =>
  post('/plans', {
    name: 'Shop',
    sourceCloud: `${NY}/GoldCloud1`,
    targetCloud: `${CH}/GoldCloud2`,
  });

describe('plan routes', () => {
  it('creates a plan, adds groups of VMs and actions, and shows it', async () => {
    const created = await create();
    expect(created.statusCode).toBe(201);
    expect(created.json()).toEqual({
      name: 'Shop',
      sourceCloud: `${NY}/GoldCloud1`,
      targetCloud: `${CH}/GoldCloud2`,
      groups: [],
    });
    expect((await post('/plans/shop/vms', { group: 1, vms: ['db1'] })).statusCode).toBe(200);
    await post('/plans/Shop/actions', { group: '1', side: 'before', script: '/opt/dr/pre.sh' });
    await post('/plans/Shop/vms', { group: '2', vms: ['app1', 'web1'] });
    const last = await post('/plans/Shop/actions', {
      group: 2,
      side: 'after',
      manual: 'check the shop',
    });
    const view = {
      name: 'Shop',
      sourceCloud: `${NY}/GoldCloud1`,
      targetCloud: `${CH}/GoldCloud2`,
      groups: [
        {
          group: 1,
          vms: ['db1'],
          before: [{ kind: 'script', path: '/opt/dr/pre.sh', timeoutSeconds: 600 }],
          after: [],
        },
        {
          group: 2,
          vms: ['app1', 'web1'],
          before: [],
          after: [{ kind: 'manual', text: 'check the shop' }],
        },
      ],
    };
    expect(last.json()).toEqual(view);
    expect((await get('/plans/shop')).json()).toEqual(view);
    expect((await get('/plans')).json()).toEqual({ plans: [view] });
  });

  it('answers 400 naming the field, changing nothing', async () => {
    await create();
    await post('/plans/Shop/vms', { group: 1, vms: ['db1'] });
    const before = await collect(store, '');
    const cases: Array<[string, unknown, string]> = [
      ['/plans/Shop/vms', { group: 3, vms: ['app1'] }, 'group'],
      ['/plans/Shop/vms', { group: 2, vms: ['db1'] }, 'vms'],
      ['/plans/Shop/vms', { group: 2, vms: ['nope'] }, 'vms'],
      ['/plans/Shop/actions', { group: 1, side: 'before', script: 'pre.sh' }, 'script'],
      ['/plans/Shop/actions', { group: 1, side: 'before', colour: 'red' }, 'colour'],
      [
        '/plans',
        { name: 'B', sourceCloud: `${CH}/GoldCloud2`, targetCloud: `${NY}/GoldCloud1` },
        'sourceCloud',
      ],
      [
        '/plans',
        { name: 'B', sourceCloud: `${NY}/GoldCloud1`, targetCloud: `${CH}/Other` },
        'targetCloud',
      ],
    ];
    for (const [url, body, field] of cases) {
      const res = await post(url, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'SS_BAD_INPUT', details: { field } });
    }
    expect(await collect(store, '')).toEqual(before);
  });

  it('refuses a second plan of the same name and answers 404 for an unknown plan', async () => {
    await create();
    expect((await create()).json().error.code).toBe('SS_CONFLICT');
    const missing = await post('/plans/Nope/vms', { group: 1, vms: ['db1'] });
    expect(missing.statusCode).toBe(404);
    expect((await get('/plans/Nope')).statusCode).toBe(404);
  });
});
