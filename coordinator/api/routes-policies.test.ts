import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PolicyService } from '../policies/policy-service.ts';
import { KeyService } from '../registration/key-service.ts';
import { collect, type Store } from '../store/store.ts';
import { headers, routeLab, type RouteLab } from './route-test.fixture.ts';

const NY = 'VMM-NewYork';
const CH = 'VMM-Chicago';

let lab: RouteLab;
let store: Store;
let app: FastifyInstance;

beforeEach(async () => {
  lab = await routeLab(({ store, clock, inventory }) => ({
    inventory: {
      keys: new KeyService(store, clock, { coordinatorUrl: () => '', caFingerprint: '' }),
      inventory,
      clock,
    },
    policies: new PolicyService(store, clock),
  }));
  ({ store, app } = lab);
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

describe('policy routes', () => {
  it('creates a policy from CLI strings and lists it with every field', async () => {
    const created = await post('/policies', {
      name: 'Gold',
      copyFrequency: '30s',
      retentionHours: '4',
      appConsistentHours: '2',
      compression: 'off',
      initial: 'offline',
      exportPath: '/export',
      importPath: '/import',
    });
    expect(created.statusCode).toBe(201);
    const view = {
      name: 'Gold',
      hostVersion: null,
      auth: 'certificate',
      port: 8084,
      copyFrequency: '30s',
      retentionHours: 4,
      appConsistentHours: 2,
      compression: false,
      deleteReplicaOnDisable: false,
      initial: { method: 'offline', exportPath: '/export', importPath: '/import' },
      createdAt: '2026-06-01T00:00:00.000Z',
      associations: [],
    };
    expect(created.json()).toEqual(view);
    expect((await get('/policies')).json()).toEqual({ policies: [view] });
    expect((await get('/policies/gold')).json()).toEqual(view);
    expect((await get('/policies/Silver')).statusCode).toBe(404);
  });

  it('answers 400 naming the field for a bad value or an unknown key, storing nothing', async () => {
    const before = await collect(store, '');
    const bad = await post('/policies', { name: 'Gold', port: 0 });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: 'SS_BAD_INPUT', details: { field: 'port' } });
    const unknown = await post('/policies', { name: 'Gold', colour: 'gold' });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error.details.field).toBe('colour');
    expect(await collect(store, '')).toEqual(before);
  });

  it('associates clouds; cloud list then shows policy and partner on both', async () => {
    await post('/policies', { name: 'Gold' });
    const res = await post('/policies/Gold/associations', {
      sourceCloud: `${NY}/GoldCloud1`,
      targetCloud: `${CH}/GoldCloud2`,
    });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({
      policy: 'Gold',
      sourceCloud: `${NY}/GoldCloud1`,
      targetCloud: `${CH}/GoldCloud2`,
      associatedAt: '2026-06-01T00:00:00.000Z',
    });
    const [policy] = (await get('/policies')).json().policies;
    expect(policy).toMatchObject({
      hostVersion: '2012R2',
      associations: [{ sourceCloud: `${NY}/GoldCloud1`, targetCloud: `${CH}/GoldCloud2` }],
    });
    const clouds = (await get('/clouds')).json().clouds as {
      name: string;
      policy: string | null;
      pairedWith: string | null;
    }[];
    expect(clouds.map((c) => [c.name, c.policy, c.pairedWith])).toEqual([
      ['GoldCloud2', 'Gold', `${NY}/GoldCloud1`],
      ['SilverCloud2', null, null],
      ['GoldCloud1', 'Gold', `${CH}/GoldCloud2`],
      ['SilverCloud1', null, null],
    ]);
  });

  it('answers 400 for an unknown policy and 409 for a cloud already paired', async () => {
    const none = await post('/policies/Gold/associations', {
      sourceCloud: `${NY}/GoldCloud1`,
      targetCloud: `${CH}/GoldCloud2`,
    });
    expect([none.statusCode, none.json().error.details.field]).toEqual([400, 'policy']);
    await post('/policies', { name: 'Gold' });
    await post('/policies/Gold/associations', {
      sourceCloud: `${NY}/GoldCloud1`,
      targetCloud: `${CH}/GoldCloud2`,
    });
    const again = await post('/policies/Gold/associations', {
      sourceCloud: `${NY}/SilverCloud1`,
      targetCloud: `${CH}/GoldCloud2`,
    });
    expect([again.statusCode, again.json().error.code]).toEqual([409, 'SS_CONFLICT']);
  });

  it('answers 404 for an unknown vault', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/vaults/test/policies', headers });
    expect(res.statusCode).toBe(404);
  });
});
