import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SecondsiteError } from '../errors/errors.ts';
import { createApiClient, errorFromResponse, type FetchLike } from './client.ts';

function fakeFetch(status: number, body: string, seen: unknown[] = []): FetchLike {
  return async (url, init) => {
    seen.push({ url, ...init });
    return { status, text: async () => body };
  };
}

describe('api client', () => {
  it('sends the token and JSON body, and returns the parsed answer', async () => {
    const seen: unknown[] = [];
    const api = createApiClient({
      url: 'https://c:9443/',
      token: 'tok',
      fetch: fakeFetch(201, '{"id":"v-1","name":"prod","createdAt":"t"}', seen),
    });
    expect(await api.createVault('prod')).toEqual({ id: 'v-1', name: 'prod', createdAt: 't' });
    expect(seen).toEqual([
      {
        url: 'https://c:9443/api/v1/vaults',
        method: 'POST',
        headers: { authorization: 'Bearer tok', 'content-type': 'application/json' },
        body: '{"name":"prod"}',
      },
    ]);
  });

  it('rebuilds the typed error from the code in the body', async () => {
    const body = JSON.stringify({
      error: { code: 'SS_CONFLICT', message: 'exists', details: { vault: 'prod' } },
    });
    const api = createApiClient({ url: 'https://c', token: 't', fetch: fakeFetch(409, body) });
    const e = await api.createVault('prod').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SecondsiteError);
    expect(e).toMatchObject({ code: 'SS_CONFLICT', message: 'exists', details: { vault: 'prod' } });
  });

  it('turns unknown codes and non-JSON bodies into SS_PROTOCOL', () => {
    expect(errorFromResponse(500, '<html>')).toMatchObject({ code: 'SS_PROTOCOL' });
    expect(errorFromResponse(400, '{"error":{"code":"SS_MADE_UP"}}')).toMatchObject({
      code: 'SS_PROTOCOL',
    });
  });

  it('reports an unreachable coordinator as SS_UNAVAILABLE', async () => {
    const api = createApiClient({
      url: 'https://c',
      token: 't',
      fetch: async () => {
        throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED') });
      },
    });
    await expect(api.listVaults()).rejects.toMatchObject({
      code: 'SS_UNAVAILABLE',
      message: expect.stringContaining('ECONNREFUSED'),
    });
  });

  it('stays browser-safe: no node: imports', () => {
    const dir = new URL('.', import.meta.url);
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts'))) {
      expect(readFileSync(new URL(f, dir), 'utf8'), f).not.toMatch(/from '(node:|fs|net|http)/);
    }
  });
});
