/** Jobs in the store: under their vault (v/<vaultId>/job/<id>) plus an id → vault index. */
import type { Job } from '../domain/job.ts';
import type { Vault } from '../domain/vault.ts';
import { collect, keys, type Store } from '../store/store.ts';

export async function createJob(store: Store, job: Job): Promise<void> {
  await store.batch([
    { type: 'put', key: keys.job(job.vaultId, job.id), value: job },
    { type: 'put', key: keys.jobVault(job.id), value: job.vaultId },
  ]);
}

export async function saveJob(store: Store, job: Job): Promise<void> {
  await store.put(keys.job(job.vaultId, job.id), job);
}

export async function loadJob(store: Store, id: string): Promise<Job | undefined> {
  const vaultId = await store.get<string>(keys.jobVault(id));
  return vaultId === undefined ? undefined : store.get<Job>(keys.job(vaultId, id));
}

export function listJobs(store: Store, vaultId: string): Promise<Job[]> {
  return collect<Job>(store, keys.jobPrefix(vaultId));
}

/** Jobs a restart must pick up again: those still `running` (not waiting, not finished). */
export async function runningJobs(store: Store): Promise<Job[]> {
  const out: Job[] = [];
  for (const vault of await collect<Vault>(store, keys.vaultPrefix)) {
    for (const job of await listJobs(store, vault.id)) if (job.state === 'running') out.push(job);
  }
  return out;
}
