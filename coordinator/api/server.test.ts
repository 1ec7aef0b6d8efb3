import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { hashSecret } from '../../certs/secrets.ts';
import { silentLogger } from '../../common/log/log.ts';
import { FakeClock } from '../../common/time/clock.ts';
import { waitFor } from '../../test/helpers/wait-for.ts';
import { JobRunner } from '../jobs/job-runner.ts';
import { JobTypeRegistry } from '../jobs/job-types.ts';
import { testJobType } from '../jobs/test-job-type.ts';
import { faultyStore } from '../store/faulty-store.ts';
import { openMemoryStore } from '../store/level-store.ts';
import { collect, type Store } from '../store/store.ts';
import { VaultService } from '../vaults/vault-service.ts';
import { adminAuth } from './admin-auth.ts';
import { buildApi } from './server.ts';

const TOKEN = 'test-admin-token_0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

let store: Store;
let app: FastifyInstance;
let runner: JobRunner;

beforeEach(async () => {
  store = await openMemoryStore();
  const clock = new FakeClock();
  const registry = new JobTypeRegistry().register(testJobType);
  runner = new JobRunner({ store, registry, clock, log: silentLogger });
  app = buildApi({
    vaults: new VaultService(store, clock),
    jobs: runner,
    auth: adminAuth(hashSecret(TOKEN)),
    log: silentLogger,
    testJobs: true,
  });
});

afterEach(async () => {
  await runner.shutdown();
  await app.close();
});

async function everything(): Promise<unknown[]> {
  return collect(store, '');
}

describe('REST API authentication', () => {
  it.each([
    ['no header', {}],
    ['a wrong token', { authorization: 'Bearer wrong-token' }],
    ['another scheme', { authorization: `Basic ${TOKEN}` }],
  ])('refuses %s with the same answer, for known and unknown routes', async (_what, headers) => {
    for (const url of ['/api/v1/vaults', '/api/v1/nothing-here']) {
      const res = await app.inject({ method: 'GET', url, headers });
      expect(res.statusCode).toBe(401);
      expect(res.json()).toEqual({
        error: { code: 'SS_UNAUTHENTICATED', message: 'authentication required', details: {} },
      });
    }
    const post = await app.inject({
      method: 'POST',
      url: '/api/v1/vaults',
      headers,
      payload: { name: 'prod' },
    });
    expect(post.statusCode).toBe(401);
    expect(await everything()).toEqual([]);
  });
});

describe('vault routes', () => {
  it('creates and lists vaults; a duplicate name is a conflict', async () => {
    const created = await app.inject({
      method: 'POST',
      url: '/api/v1/vaults',
      headers: auth,
      payload: { name: 'prod' },
    });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ name: 'prod', id: expect.stringMatching(/^v-/) });
    await app.inject({
      method: 'POST',
      url: '/api/v1/vaults',
      headers: auth,
      payload: { name: 'dr-test' },
    });
    const dup = await app.inject({
      method: 'POST',
      url: '/api/v1/vaults',
      headers: auth,
      payload: { name: 'prod' },
    });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error.code).toBe('SS_CONFLICT');
    const list = await app.inject({ method: 'GET', url: '/api/v1/vaults', headers: auth });
    expect(list.json().vaults.map((v: { name: string }) => v.name)).toEqual(['dr-test', 'prod']);
    const one = await app.inject({ method: 'GET', url: '/api/v1/vaults/prod', headers: auth });
    expect(one.json().name).toBe('prod');
    const missing = await app.inject({ method: 'GET', url: '/api/v1/vaults/nope', headers: auth });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('SS_NOT_FOUND');
  });

  it.each([
    ['a bad name', { name: 'Bad Name!' }, 'name'],
    ['a missing name', {}, 'name'],
    ['a name of the wrong type', { name: 7 }, 'name'],
    ['an unknown key', { name: 'ok', colour: 'red' }, 'colour'],
  ])('refuses %s naming the field, and changes nothing', async (_what, payload, field) => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/vaults', headers: auth, payload });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'SS_BAD_INPUT', details: { field } });
    expect(res.json().error.message).toContain(field);
    expect(await everything()).toEqual([]);
  });

  it('refuses a body that is not JSON as bad input', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/vaults',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '{"name": ',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('SS_BAD_INPUT');
  });
});

describe('store failures', () => {
  it('answers SS_IO (500) and acknowledges nothing when the write fails', async () => {
    const faulty = faultyStore(await openMemoryStore());
    const clock = new FakeClock();
    const api = buildApi({
      vaults: new VaultService(faulty, clock),
      jobs: new JobRunner({
        store: faulty,
        registry: new JobTypeRegistry(),
        clock,
        log: silentLogger,
      }),
      auth: adminAuth(hashSecret(TOKEN)),
      log: silentLogger,
    });
    faulty.setFault((op) => op === 'batch');
    const res = await api.inject({
      method: 'POST',
      url: '/api/v1/vaults',
      headers: auth,
      payload: { name: 'prod' },
    });
    expect(res.statusCode).toBe(500);
    expect(res.json().error.code).toBe('SS_IO');
    faulty.setFault(undefined);
    expect(await collect(faulty, '')).toEqual([]);
    const retry = await api.inject({
      method: 'POST',
      url: '/api/v1/vaults',
      headers: auth,
      payload: { name: 'prod' },
    });
    expect(retry.statusCode).toBe(201);
    await api.close();
  });
});

describe('job routes', () => {
  it('lists, shows, resumes and cancels jobs of a vault', async () => {
    await app.inject({
      method: 'POST',
      url: '/api/v1/vaults',
      headers: auth,
      payload: { name: 'prod' },
    });
    const started = await app.inject({
      method: 'POST',
      url: '/api/v1/test/jobs',
      headers: auth,
      payload: {
        vault: 'prod',
        input: {
          steps: [
            { name: 'a', action: 'ok' },
            { name: 'check', action: 'manual' },
          ],
        },
      },
    });
    expect(started.statusCode).toBe(201);
    const id = started.json().id as string;
    expect(started.json()).not.toHaveProperty('input');
    const show = () => app.inject({ method: 'GET', url: `/api/v1/jobs/${id}`, headers: auth });
    await waitFor(async () => (await show()).json().state === 'waiting');
    const list = await app.inject({ method: 'GET', url: '/api/v1/jobs?vault=prod', headers: auth });
    expect(list.json().jobs).toHaveLength(1);
    expect(list.json().jobs[0]).toMatchObject({ id, vault: 'prod', type: 'test.steps' });
    // Vault isolation (R1): another vault sees none of prod's jobs.
    await app.inject({
      method: 'POST',
      url: '/api/v1/vaults',
      headers: auth,
      payload: { name: 'other' },
    });
    const other = await app.inject({
      method: 'GET',
      url: '/api/v1/jobs?vault=other',
      headers: auth,
    });
    expect(other.json().jobs).toEqual([]);

    const resumed = await app.inject({
      method: 'POST',
      url: `/api/v1/jobs/${id}/resume`,
      headers: auth,
    });
    expect(resumed.statusCode).toBe(200);
    await waitFor(async () => (await show()).json().state === 'succeeded');
    const again = await app.inject({
      method: 'POST',
      url: `/api/v1/jobs/${id}/cancel`,
      headers: auth,
    });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('SS_CONFLICT');
  });

  it('names the field of a bad job id, query or test-job input', async () => {
    const badId = await app.inject({ method: 'GET', url: '/api/v1/jobs/../x', headers: auth });
    expect(badId.statusCode).toBeGreaterThanOrEqual(400);
    const id = await app.inject({ method: 'GET', url: '/api/v1/jobs/nope', headers: auth });
    expect(id.json().error).toMatchObject({ code: 'SS_BAD_INPUT', details: { field: 'id' } });
    const query = await app.inject({ method: 'GET', url: '/api/v1/jobs', headers: auth });
    expect(query.json().error).toMatchObject({ code: 'SS_BAD_INPUT', details: { field: 'vault' } });
    await app.inject({
      method: 'POST',
      url: '/api/v1/vaults',
      headers: auth,
      payload: { name: 'prod' },
    });
    const input = await app.inject({
      method: 'POST',
      url: '/api/v1/test/jobs',
      headers: auth,
      payload: { vault: 'prod', input: { steps: [{ name: 'a', action: 'explode' }] } },
    });
    expect(input.json().error).toMatchObject({
      code: 'SS_BAD_INPUT',
      details: { field: 'input.steps.0.action' },
    });
    const vault = await app.inject({ method: 'GET', url: '/api/v1/vaults/prod', headers: auth });
    expect(await runner.list(vault.json().id)).toEqual([]);
  });
});
