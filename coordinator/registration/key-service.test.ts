import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../common/time/clock.ts';
import { openMemoryStore } from '../store/level-store.ts';
import { collect } from '../store/store.ts';
import { VaultService } from '../vaults/vault-service.ts';
import { KeyService } from './key-service.ts';

async function setup() {
  const store = await openMemoryStore();
  const clock = new FakeClock();
  const vaults = new VaultService(store, clock);
  const keys = new KeyService(store, clock, {
    coordinatorUrl: () => 'https://127.0.0.1:9443',
    caFingerprint: 'c'.repeat(64),
  });
  return { store, clock, keys, prod: await vaults.create('prod') };
}

describe('key service', () => {
  it('stores the secret only as a hash', async () => {
    const { store, keys, prod } = await setup();
    const file = await keys.issue({ vault: prod, singleUse: false, server: null });
    expect(file).toMatchObject({ vault: 'prod', coordinatorUrl: 'https://127.0.0.1:9443' });
    expect(JSON.stringify(await collect(store, ''))).not.toContain(file.secret);
  });

  it('lets only one of two simultaneous registrations use a single-use key', async () => {
    const { keys, prod } = await setup();
    const file = await keys.issue({ vault: prod, singleUse: true, server: null });
    const keyJson = JSON.stringify(file);
    const outcomes = await Promise.allSettled([
      keys.use({ keyJson, registrationId: 'reg-a', serverName: 'VMM-NewYork' }),
      keys.use({ keyJson, registrationId: 'reg-b', serverName: 'VMM-Chicago' }),
    ]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    const failed = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect(failed.reason).toMatchObject({ code: 'SS_KEY_USED' });
  });

  it('revokes idempotently and refuses unknown ids and malformed files', async () => {
    const { keys, prod } = await setup();
    const file = await keys.issue({ vault: prod, singleUse: false, server: null });
    const first = await keys.revoke(prod.id, file.keyId);
    expect(await keys.revoke(prod.id, file.keyId)).toEqual(first);
    await expect(keys.revoke(prod.id, 'k-000000000000')).rejects.toMatchObject({
      code: 'SS_NOT_FOUND',
    });
    await expect(
      keys.use({ keyJson: '{"nope": 1}', registrationId: 'r', serverName: 'x' }),
    ).rejects.toMatchObject({ code: 'SS_KEY_INVALID' });
    await expect(
      keys.issue({ vault: prod, singleUse: false, server: 'bad name!' }),
    ).rejects.toMatchObject({ code: 'SS_BAD_INPUT', details: { field: 'server' } });
  });
});
