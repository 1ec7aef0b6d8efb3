/**
 * Vaults (R1): one per deployment, created by name; every object is keyed under its vault's
 * id so vaults in one coordinator stay isolated.
 */
import { z } from 'zod';
import { isValidVaultName } from '../../certs/identity.ts';

/**
 * The vault name is the host part of every identity in it (secondsite://<vault>/host/<name>),
 * so it follows that rule: a lowercase DNS label, which is also safe in store keys and files.
 */
export const vaultNameSchema = z
  .string()
  .refine(
    isValidVaultName,
    'a vault name is 1-63 of a-z, 0-9 and "-", starting and ending with a letter or digit',
  );

export interface Vault {
  readonly id: string;
  readonly name: string;
  readonly createdAt: string;
}

export function newVault(a: { id: string; name: string; now: number }): Vault {
  return { id: a.id, name: a.name, createdAt: new Date(a.now).toISOString() };
}
