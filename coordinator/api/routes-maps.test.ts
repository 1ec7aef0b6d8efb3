import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashSecret } from '../../certs/secrets.ts';
import { silentLogger } from '../../common/log/log.ts';
import { FakeClock } from '../../common/time/clock.ts';
import { deploy, recordOf } from '../inventory/site-record.fixture.ts';
import { JobRunner } from '../jobs/job-runner.ts';
import { JobTypeRegistry } from '../jobs/job-types.ts';
import { MapService } from '../mappings/map-service.ts';
import { openMemoryStore } from '../store/level-store.ts';
import { collect, keys, type Store } from '../store/store.ts';
import { VaultService } from '../vaults/vault-service.ts';
import { adminAuth } from './admin-auth.ts';
import { buildApi } from './server.ts';

const TOKEN = 'test-admin-token_0123456789';
const headers = { authorization: `Bearer ${TOKEN}` };
const NY = 'VMM-NewYork';
const CH = 'VMM-Chicago';

let store: Store;
let app: FastifyInstance;
let runner: JobRunner;

beforeEach(async () => {
  store = await openMemoryStore();
  const clock = new FakeClock();
  const vaults = new VaultService(store, clock);
  runner = new JobRunner({ store, registry: new JobTypeRegistry(), clock, log: silentLogger });
  app = buildApi({
    vaults,
    jobs: runner,
    auth: adminAuth(hashSecret(TOKEN)),
    log: silentLogger,
    maps: new MapService(store),
  });
  const vault = await vaults.create('prod');
  for (const site of ['new-york.json', 'chicago.json']) {
    const r = recordOf(deploy(site), () => 0, vault.id);
    await store.put(keys.server(vault.id, r.name), r);
  }
});

afterEach(async () => {
  await runner.shutdown();
  await app.close();
});

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
