import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MapService } from '../mappings/map-service.ts';
import { collect, type Store } from '../store/store.ts';
import { headers, routeLab, type RouteLab } from './route-test.fixture.ts';

const NY = 'VMM-NewYork';
const CH = 'VMM-Chicago';

let lab: RouteLab;
let store: Store;
let app: FastifyInstance;

beforeEach(async () => {
  lab = await routeLab(({ store }) => ({ maps: new MapService(store) }));
  ({ store, app } = lab);
});

afterEach(() => lab.close());

const base = '/api/v1/vaults/prod';
const qs = (m: { source: string; target: string }) =>
  `source=${encodeURIComponent(m.source)}&target=${encodeURIComponent(m.target)}`;

describe.each([
  ['network', `${NY}/VMNetwork1 NewYork`, `${CH}/VMNetwork1 Chicago`, `${CH}/VMNetwork7`],
  ['storage', `${NY}/GOLD`, `${CH}/GOLD`, `${CH}/PLATINUM`],
])('%s-map routes', (kind, source, target, unknown) => {
  const url = `${base}/${kind}-maps`;

  it('creates, lists and deletes a map as SERVER/NAME strings', async () => {
    const created = await app.inject({ method: 'POST', url, headers, payload: { source, target } });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toEqual({ source, target });
    expect((await app.inject({ method: 'GET', url, headers })).json()).toEqual({
      maps: [{ source, target }],
    });
    const del = await app.inject({
      method: 'DELETE',
      url: `${url}?${qs({ source, target })}`,
      headers,
    });
    expect([del.statusCode, del.json()]).toEqual([200, { source, target }]);
    expect((await app.inject({ method: 'GET', url, headers })).json()).toEqual({ maps: [] });
  });

  it('answers 400 naming target for an unknown target, storing nothing', async () => {
    const before = await collect(store, '');
    const res = await app.inject({
      method: 'POST',
      url,
      headers,
      payload: { source, target: unknown },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'SS_BAD_INPUT', details: { field: 'target' } });
    expect(await collect(store, '')).toEqual(before);
  });

  it('answers 404 when deleting a map that does not exist, and 400 without a target', async () => {
    const missing = await app.inject({
      method: 'DELETE',
      url: `${url}?${qs({ source, target })}`,
      headers,
    });
    expect(missing.statusCode).toBe(404);
    const bare = await app.inject({
      method: 'DELETE',
      url: `${url}?source=${encodeURIComponent(source)}`,
      headers,
    });
    expect([bare.statusCode, bare.json().error.details.field]).toEqual([400, 'target']);
  });
});
