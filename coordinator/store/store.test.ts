import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SecondsiteError } from '../../common/errors/errors.ts';
import { faultyStore } from './faulty-store.ts';
import { openLevelStore, openMemoryStore } from './level-store.ts';
import { CURRENT_SCHEMA_VERSION, upgradeSchema } from './schema.ts';
import { collect, keys, type Store } from './store.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ss-store-'));
  dirs.push(d);
  return d;
}

// The same suite over both implementations: the memory store must behave like LevelDB.
const implementations: Array<[string, () => Promise<Store>]> = [
  ['memory-level', openMemoryStore],
  ['LevelDB', () => openLevelStore(join(tempDir(), 'db'))],
];

describe.each(implementations)('store over %s', (_name, open) => {
  it('puts, gets and deletes JSON values', async () => {
    const store = await open();
    expect(await store.get('a')).toBeUndefined();
    await store.put('a', { n: 1, list: ['x'] });
    expect(await store.get('a')).toEqual({ n: 1, list: ['x'] });
    await store.del('a');
    expect(await store.get('a')).toBeUndefined();
    await store.close();
  });

  it('iterates one prefix in key order, and nothing beside it', async () => {
    const store = await open();
    await store.batch([
      { type: 'put', key: 'v/2/job/b', value: 2 },
      { type: 'put', key: 'v/2/job/a', value: 1 },
      { type: 'put', key: 'v/20/job/c', value: 3 },
      { type: 'put', key: 'v/1/job/z', value: 0 },
    ]);
    const entries: Array<readonly [string, number]> = [];
    for await (const e of store.iterate<number>(keys.jobPrefix('2'))) entries.push(e);
    expect(entries).toEqual([
      ['v/2/job/a', 1],
      ['v/2/job/b', 2],
    ]);
    expect(await collect(store, 'v/')).toHaveLength(4);
    await store.close();
  });

  it('applies a batch with puts and deletes together', async () => {
    const store = await open();
    await store.put('x', 1);
    await store.batch([
      { type: 'del', key: 'x' },
      { type: 'put', key: 'y', value: 'why' },
    ]);
    expect(await store.get('x')).toBeUndefined();
    expect(await store.get('y')).toBe('why');
    await store.close();
  });

  it('writes the schema version on a fresh store and upgrades an old one step by step', async () => {
    const store = await open();
    expect(await upgradeSchema(store)).toEqual({
      from: CURRENT_SCHEMA_VERSION,
      to: CURRENT_SCHEMA_VERSION,
    });
    await store.put(keys.schemaVersion, 0);
    const seen: number[] = [];
    const upgrades = {
      0: async (s: Store) => {
        seen.push(0);
        await s.put('upgraded', true);
      },
      1: async () => {
        seen.push(1);
      },
    };
    expect(await upgradeSchema(store, upgrades, 2)).toEqual({ from: 0, to: 2 });
    expect(seen).toEqual([0, 1]);
    expect(await store.get(keys.schemaVersion)).toBe(2);
    expect(await store.get('upgraded')).toBe(true);
    await store.close();
  });

  it('refuses a layout written by a newer version', async () => {
    const store = await open();
    await store.put(keys.schemaVersion, CURRENT_SCHEMA_VERSION + 1);
    await expect(upgradeSchema(store)).rejects.toMatchObject({ code: 'SS_STORE_VERSION' });
    await store.close();
  });

  it('reports injected failures as SS_IO and leaves the data unchanged', async () => {
    const store = faultyStore(await open());
    await store.put('k', 'before');
    store.setFault((op) => op === 'batch');
    const failed = store.batch([
      { type: 'put', key: 'k', value: 'after' },
      { type: 'put', key: 'k2', value: 'new' },
    ]);
    await expect(failed).rejects.toBeInstanceOf(SecondsiteError);
    await expect(failed).rejects.toMatchObject({ code: 'SS_IO' });
    store.setFault(undefined);
    expect(await store.get('k')).toBe('before');
    expect(await store.get('k2')).toBeUndefined();
    expect(store.injected).toBe(1);
    await store.close();
  });
});

describe('LevelDB store', () => {
  it('keeps what it acknowledged across a close and reopen', async () => {
    const path = join(tempDir(), 'db');
    const first = await openLevelStore(path);
    await first.put(keys.vault('v1'), { id: 'v1', name: 'prod' });
    await first.close();
    const second = await openLevelStore(path);
    expect(await second.get(keys.vault('v1'))).toEqual({ id: 'v1', name: 'prod' });
    await second.close();
  });

  it('maps a database failure to SS_IO', async () => {
    const path = join(tempDir(), 'db');
    const first = await openLevelStore(path);
    // LevelDB locks its folder: a second open of the same folder fails.
    await expect(openLevelStore(path)).rejects.toMatchObject({ code: 'SS_IO' });
    await first.close();
  });
});
