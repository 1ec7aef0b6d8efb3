/**
 * An agent's identity in its data folder: what it registered as, its keys (0600) and
 * certificates. Written once at registration; later starts read it and need no key.
 *
 *   <data>/identity/identity.json        {vault, vaultId, name, identity, coordinatorUrl,
 *                                         caFingerprint, registeredAt}
 *   <data>/identity/client.key  0600     TLS client key (made here, never sent)
 *   <data>/identity/client.crt           its certificate
 *   <data>/identity/ca.key      0600     the intermediate CA key (signs host certificates)
 *   <data>/identity/ca.crt               the intermediate CA certificate (limited to the vault)
 *   <data>/identity/root-ca.crt          the coordinator's root CA (pinned by fingerprint)
 *   <data>/identity/next-ca.key 0600     during a CA rotation: the successor's key, written
 *   <data>/identity/next-ca.crt          before its certificate (whose presence means "a
 *                                        successor exists"); at the old CA's end both are
 *                                        copied over ca.key/ca.crt, then removed
 *   <data>/identity/pending.json 0600    a registration in progress: its id, keys and CSRs,
 *                                        so a retry after a crash sends the same request
 */
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writePublicFile, writeSecretFile } from '../../certs/files.ts';

const identitySchema = z
  .object({
    vault: z.string(),
    vaultId: z.string(),
    name: z.string(),
    identity: z.string(),
    coordinatorUrl: z.string().url(),
    caFingerprint: z.string(),
    registeredAt: z.string(),
  })
  .strict();

export type IdentityInfo = z.infer<typeof identitySchema>;

export interface StoredIdentity {
  readonly info: IdentityInfo;
  readonly clientKeyPem: string;
  readonly clientCertPem: string;
  readonly caKeyPem: string;
  readonly caCertPem: string;
  readonly rootCaPem: string;
}

const pendingSchema = z
  .object({
    registrationId: z.string(),
    keyId: z.string(),
    serverName: z.string(),
    clientKeyPem: z.string(),
    clientCsrPem: z.string(),
    caKeyPem: z.string(),
    caCsrPem: z.string(),
  })
  .strict();

export type PendingRegistration = z.infer<typeof pendingSchema>;

const dirOf = (dataDir: string): string => join(dataDir, 'identity');

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export async function loadIdentity(dataDir: string): Promise<StoredIdentity | undefined> {
  const dir = dirOf(dataDir);
  const text = await readOptional(join(dir, 'identity.json'));
  if (text === undefined) return undefined;
  const info = identitySchema.parse(JSON.parse(text));
  const read = (f: string): Promise<string> => readFile(join(dir, f), 'utf8');
  return {
    info,
    clientKeyPem: await read('client.key'),
    clientCertPem: await read('client.crt'),
    caKeyPem: await read('ca.key'),
    caCertPem: await read('ca.crt'),
    rootCaPem: await read('root-ca.crt'),
  };
}

/** Keys and certificates first, identity.json last: its presence means "registered". */
export async function saveIdentity(dataDir: string, id: StoredIdentity): Promise<void> {
  const dir = dirOf(dataDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeSecretFile(join(dir, 'client.key'), id.clientKeyPem);
  await writePublicFile(join(dir, 'client.crt'), id.clientCertPem);
  await writeSecretFile(join(dir, 'ca.key'), id.caKeyPem);
  await writePublicFile(join(dir, 'ca.crt'), id.caCertPem);
  await writePublicFile(join(dir, 'root-ca.crt'), id.rootCaPem);
  await writePublicFile(join(dir, 'identity.json.tmp'), `${JSON.stringify(id.info, null, 2)}\n`);
  await rename(join(dir, 'identity.json.tmp'), join(dir, 'identity.json'));
  await rm(join(dir, 'pending.json'), { force: true });
}

export async function loadPending(dataDir: string): Promise<PendingRegistration | undefined> {
  const text = await readOptional(join(dirOf(dataDir), 'pending.json'));
  return text === undefined ? undefined : pendingSchema.parse(JSON.parse(text));
}

export async function savePending(dataDir: string, p: PendingRegistration): Promise<void> {
  await mkdir(dirOf(dataDir), { recursive: true, mode: 0o700 });
  await writeSecretFile(join(dirOf(dataDir), 'pending.json'), JSON.stringify(p));
}

export interface CaPair {
  readonly certPem: string;
  readonly keyPem: string;
}

/** The successor CA of a rotation in progress, if any. */
export async function loadNextCa(dataDir: string): Promise<CaPair | undefined> {
  const dir = dirOf(dataDir);
  const certPem = await readOptional(join(dir, 'next-ca.crt'));
  const keyPem = await readOptional(join(dir, 'next-ca.key'));
  return certPem === undefined || keyPem === undefined ? undefined : { certPem, keyPem };
}

/** Key first (0600), certificate last: a successor without its key never looks present. */
export async function saveNextCa(dataDir: string, ca: CaPair): Promise<void> {
  const dir = dirOf(dataDir);
  await writeSecretFile(join(dir, 'next-ca.key'), ca.keyPem);
  await writePublicFile(join(dir, 'next-ca.crt'), ca.certPem);
}

/**
 * The successor becomes the CA. Each write is atomic but the two are not one: a crash between
 * leaves next-ca.* in place, and the retire step (the old CA has expired) runs again at the
 * next start and repeats this, so a mismatched ca.key/ca.crt pair is always finished.
 */
export async function promoteNextCa(dataDir: string, ca: CaPair): Promise<void> {
  const dir = dirOf(dataDir);
  await writeSecretFile(join(dir, 'ca.key'), ca.keyPem);
  await writePublicFile(join(dir, 'ca.crt'), ca.certPem);
  await rm(join(dir, 'next-ca.crt'), { force: true });
  await rm(join(dir, 'next-ca.key'), { force: true });
}
