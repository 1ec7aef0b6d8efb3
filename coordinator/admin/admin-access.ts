/**
 * The admin token and <data>/admin.json (CLI.md "Finding the coordinator"): the file holds
 * the URL, the CA certificate and the token, mode 0600; the store holds only the token's hash.
 * A restart keeps the token of an admin.json that still matches the hash (and rewrites the
 * URL, which changes with port 0); a missing or foreign file gets a fresh token.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeSecretFile } from '../../certs/files.ts';
import { generateSecret, hashSecret, secretMatchesHash } from '../../certs/secrets.ts';
import type { Logger } from '../../common/log/log.ts';
import type { Clock } from '../../common/time/clock.ts';
import { keys, type Store } from '../store/store.ts';

export const ADMIN_FILE = 'admin.json';

export const adminFileSchema = z
  .object({ url: z.string().url(), caCertPem: z.string(), adminToken: z.string() })
  .strict();

export type AdminFile = z.infer<typeof adminFileSchema>;

interface StoredTokenHash {
  readonly hash: string;
  readonly createdAt: string;
}

async function readAdminFile(path: string): Promise<AdminFile | undefined> {
  try {
    return adminFileSchema.parse(JSON.parse(await readFile(path, 'utf8')));
  } catch {
    return undefined; // missing or unreadable: a new token is made
  }
}

/** Returns the token hash requests are checked against; the token itself goes only to the file. */
export async function ensureAdminToken(opts: {
  store: Store;
  dataDir: string;
  clock: Clock;
  log: Logger;
}): Promise<{ tokenHash: string; token: string }> {
  const stored = await opts.store.get<StoredTokenHash>(keys.adminTokenHash);
  const file = await readAdminFile(join(opts.dataDir, ADMIN_FILE));
  if (
    stored !== undefined &&
    file !== undefined &&
    secretMatchesHash(file.adminToken, stored.hash)
  ) {
    return { tokenHash: stored.hash, token: file.adminToken };
  }
  const token = generateSecret();
  const hash = hashSecret(token);
  await opts.store.put(keys.adminTokenHash, {
    hash,
    createdAt: new Date(opts.clock.now()).toISOString(),
  } satisfies StoredTokenHash);
  opts.log.info('made a new admin token');
  return { tokenHash: hash, token };
}

export async function writeAdminFile(dataDir: string, contents: AdminFile): Promise<string> {
  const path = join(dataDir, ADMIN_FILE);
  await writeSecretFile(path, `${JSON.stringify(contents, null, 2)}\n`);
  return path;
}
