/**
 * Registration keys end to end: a real coordinator, real providers presenting key files. Each
 * refusal has its own code and says what to do; a refused registration adds no server.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../common/time/clock.ts';
import { CHICAGO_SITE, ProviderLab } from '../helpers/provider-lab.ts';

let lab: ProviderLab;
afterEach(async () => lab.cleanup());

const DAY = 24 * 3600 * 1000;

function edit(file: string, patch: Record<string, unknown>): string {
  const key = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  const out = `${file}.edited.json`;
  writeFileSync(out, JSON.stringify({ ...key, ...patch }));
  return out;
}

describe('registration keys', () => {
  it('refuses every altered field with a distinct reason and adds no server', async () => {
    lab = new ProviderLab();
    const c = await lab.coordinator();
    const prod = await c.api.createVault('prod');
    const dr = await c.api.createVault('dr');
    const key = await lab.key(c.api, 'prod');
    const original = JSON.parse(readFileSync(key, 'utf8')) as Record<string, unknown>;
    const cases: [string, Record<string, unknown>, string][] = [
      ['secret', { secret: 'B'.repeat(43) }, 'SS_KEY_ALTERED'],
      ['keyId', { keyId: 'k-123456789abc' }, 'SS_KEY_ALTERED'],
      ['vault', { vault: 'dr' }, 'SS_KEY_ALTERED'],
      ['issuedAt', { issuedAt: new Date(Date.now() - DAY).toISOString() }, 'SS_KEY_ALTERED'],
      ['expiresAt', { expiresAt: new Date(Date.now() + 30 * DAY).toISOString() }, 'SS_KEY_ALTERED'],
      ['singleUse', { singleUse: !original['singleUse'] }, 'SS_KEY_ALTERED'],
      ['server', { server: 'VMM-NewYork' }, 'SS_KEY_ALTERED'],
      ['vaultId', { vaultId: dr.id }, 'SS_KEY_OTHER_VAULT'],
      ['caFingerprint', { caFingerprint: '0'.repeat(64) }, 'SS_FINGERPRINT_MISMATCH'],
      ['version', { version: 2 }, 'SS_KEY_INVALID'],
      ['an extra field', { colour: 'red' }, 'SS_KEY_INVALID'],
    ];
    for (const [i, [field, patch, code]] of cases.entries()) {
      await expect(
        lab.provider({ data: lab.path(`p${i}`), key: edit(key, patch) }),
        field,
      ).rejects.toMatchObject({ code });
    }
    expect(prod.id).not.toBe(dr.id);
    expect(await c.api.listServers('prod')).toEqual([]);
    // The unaltered key still works after all that.
    await lab.provider({ data: lab.path('ok'), key });
    expect((await c.api.listServers('prod')).map((s) => s.name)).toEqual(['VMM-NewYork']);
  });

  it('refuses an expired key (fake clock) and says to download a new one', async () => {
    lab = new ProviderLab();
    const clock = new FakeClock(Date.now());
    const c = await lab.coordinator(undefined, { clock });
    await c.api.createVault('prod');
    const key = await lab.key(c.api, 'prod', { validFor: '1h' });
    clock.advance(3600_000);
    const e = await lab.provider({ data: lab.path('p'), key }).catch((x: unknown) => x);
    expect(e).toMatchObject({
      code: 'SS_KEY_EXPIRED',
      message: expect.stringMatching(/download a new key/),
    });
    expect((await c.api.listKeys('prod'))[0]?.state).toBe('expired');
    await expect(c.api.downloadKey('prod', { validFor: '6d' })).rejects.toMatchObject({
      code: 'SS_BAD_INPUT',
      details: { field: 'validFor' },
    });
  });

  it('refuses a revoked key', async () => {
    lab = new ProviderLab();
    const c = await lab.coordinator();
    await c.api.createVault('prod');
    const key = await lab.key(c.api, 'prod');
    const id = (JSON.parse(readFileSync(key, 'utf8')) as { keyId: string }).keyId;
    expect((await c.api.revokeKey('prod', id)).state).toBe('revoked');
    await expect(lab.provider({ data: lab.path('p'), key })).rejects.toMatchObject({
      code: 'SS_KEY_REVOKED',
    });
    await expect(c.api.revokeKey('dr-missing', id)).rejects.toMatchObject({ code: 'SS_NOT_FOUND' });
  });

  it('lets a single-use key register one server only', async () => {
    lab = new ProviderLab();
    const c = await lab.coordinator();
    await c.api.createVault('prod');
    const key = await lab.key(c.api, 'prod', { singleUse: true });
    await lab.provider({ data: lab.path('ny'), key });
    await expect(
      lab.provider({
        data: lab.path('chi'),
        key,
        site: CHICAGO_SITE,
      }),
    ).rejects.toMatchObject({ code: 'SS_KEY_USED' });
    expect((await c.api.listKeys('prod'))[0]).toMatchObject({ state: 'used', uses: 1 });
  });

  it('binds a key to a server name', async () => {
    lab = new ProviderLab();
    const c = await lab.coordinator();
    await c.api.createVault('prod');
    const key = await lab.key(c.api, 'prod', { server: 'VMM-Chicago' });
    await expect(lab.provider({ data: lab.path('ny'), key })).rejects.toMatchObject({
      code: 'SS_KEY_WRONG_SERVER',
    });
    await lab.provider({ data: lab.path('chi'), key, site: CHICAGO_SITE });
    expect((await c.api.listServers('prod')).map((s) => s.name)).toEqual(['VMM-Chicago']);
  });

  it('refuses a key of another vault for a provider registered elsewhere', async () => {
    lab = new ProviderLab();
    const c = await lab.coordinator();
    await c.api.createVault('prod');
    await c.api.createVault('dr');
    const data = lab.path('ny');
    const p = await lab.provider({ data, key: await lab.key(c.api, 'prod') });
    await p.stop();
    await expect(lab.provider({ data, key: await lab.key(c.api, 'dr') })).rejects.toMatchObject({
      code: 'SS_KEY_OTHER_VAULT',
    });
    // A key of its own vault is simply not needed.
    await lab.provider({ data, key: await lab.key(c.api, 'prod') });
    expect(await c.api.listServers('dr')).toEqual([]);
  });
});
