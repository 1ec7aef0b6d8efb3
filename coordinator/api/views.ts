/** Stored records → the public API shapes of common/api-client/types.ts. */
import type { JobView, VaultView } from '../../common/api-client/types.ts';
import type { Job } from '../domain/job.ts';
import type { Vault } from '../domain/vault.ts';

export function vaultView(v: Vault): VaultView {
  return { id: v.id, name: v.name, createdAt: v.createdAt };
}

/** The job's input stays inside the coordinator: later job types may carry secrets in it. */
export function jobView(job: Job, vaultName: string): JobView {
  const { input: _input, ...rest } = job;
  return { ...rest, vault: vaultName };
}
