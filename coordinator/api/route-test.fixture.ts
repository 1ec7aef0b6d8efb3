/**
 * The setup the route tests share: a memory store, a fake clock, vault "prod" holding the
 * deploy/ site files' New York and Chicago servers (clouds synced), and the API built with the
 * services a test adds. Routes are called with `inject()` and the admin token.
 */
import type { FastifyInstance } from 'fastify';
import { hashSecret } from '../../certs/secrets.ts';
import { silentLogger } from '../../common/log/log.ts';
import { FakeClock } from '../../common/time/clock.ts';
import type { Vault } from '../domain/vault.ts';
import { InventoryService } from '../inventory/inventory-service.ts';
import { deploy, recordOf } from '../inventory/site-record.fixture.ts';
import { JobRunner } from '../jobs/job-runner.ts';
import { JobTypeRegistry } from '../jobs/job-types.ts';
import { openMemoryStore } from '../store/level-store.ts';
import { keys, type Store } from '../store/store.ts';
import { VaultService } from '../vaults/vault-service.ts';
import { adminAuth } from './admin-auth.ts';
import { buildApi, type ApiOptions } from './server.ts';

export const TOKEN = 'test-admin-token_0123456789';
export const headers = { authorization: `Bearer ${TOKEN}` };

export interface RouteLab {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly clock: FakeClock;
  readonly vaults: VaultService;
  readonly inventory: InventoryService;
  readonly vault: Vault;
  close(): Promise<void>;
}

type Base = Pick<ApiOptions, 'vaults' | 'jobs' | 'auth' | 'log'>;

export async function routeLab(
  services: (c: {
    store: Store;
    clock: FakeClock;
    vaults: VaultService;
    inventory: InventoryService;
  }) => Omit<ApiOptions, keyof Base>,
  now = Date.UTC(2026, 5, 1),
): Promise<RouteLab> {
  const store = await openMemoryStore();
  const clock = new FakeClock(now);
  const vaults = new VaultService(store, clock);
  const inventory = new InventoryService(store, clock);
  const runner = new JobRunner({
    store,
    registry: new JobTypeRegistry(),
    clock,
    log: silentLogger,
  });
  const app = buildApi({
    vaults,
    jobs: runner,
    auth: adminAuth(hashSecret(TOKEN)),
    log: silentLogger,
    ...services({ store, clock, vaults, inventory }),
  });
  const vault = await vaults.create('prod');
  for (const site of ['new-york.json', 'chicago.json']) {
    const r = recordOf(deploy(site), () => 0, vault.id);
    await store.put(keys.server(vault.id, r.name), r);
    for (const c of r.inventory.clouds) await inventory.saveCloud(vault.id, r.name, c);
  }
  return {
    app,
    store,
    clock,
    vaults,
    inventory,
    vault,
    async close() {
      await runner.shutdown();
      await app.close();
    },
  };
}
