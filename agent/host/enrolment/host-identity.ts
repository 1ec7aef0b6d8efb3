/**
 * An enrolled host's identity in its data folder. The three PEM files are also what the
 * replication ports (8084) use, so their names and contents are fixed:
 *
 *   <data>/identity/key.pem   0600   the host's private key (made here, never sent)
 *   <data>/identity/cert.pem         its certificate, then the provider's intermediate CA
 *   <data>/identity/ca.pem           the vault root CA, then the provider's intermediate
 *   <data>/identity/host.json        {vault, name, identity, server, provider,
 *                                     providerCaFingerprint, enrolledAt, providerCaPins?}
 *
 * host.json is written last: its presence means "enrolled", so a crash mid-way leaves a
 * folder that enrols again.
 *
 * A renewal (cert-renewer.ts) replaces key, certificate and bundle together. Each file is
 * replaced atomically, but three renames are not one, so the new set is first written whole
 * to `renewed.json` (0600); then the three files are replaced and the staging file removed.
 * A crash between leaves `renewed.json`, which the next load installs before reading: the
 * folder never holds a key and a certificate that do not belong together.
 *
 *   <data>/identity/renewed.json  0600   {keyPem, certPem, caPem} while a renewal installs
 */
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writePublicFile, writeSecretFile } from '../../../certs/files.ts';
import { SecondsiteError } from '../../../common/errors/errors.ts';

const infoSchema = z
  .object({
    vault: z.string(),
    name: z.string(),
    identity: z.string(),
    server: z.string(),
    provider: z.string(),
    providerCaFingerprint: z.string(),
    enrolledAt: z.string(),
    /**
     * The provider CAs pinned now, once a rotation has happened (provider-pins.ts); absent:
     * only providerCaFingerprint, the enrolment pin.
     */
    providerCaPins: z
      .array(z.object({ fingerprint: z.string(), notAfter: z.number() }).strict())
      .optional(),
  })
  .strict();

export type HostIdentityInfo = z.infer<typeof infoSchema>;

export interface HostIdentity {
  readonly info: HostIdentityInfo;
  readonly keyPem: string;
  /** Leaf then intermediate. */
  readonly certPem: string;
  /** Root then intermediate. */
  readonly caPem: string;
}

export const identityDir = (dataDir: string): string => join(dataDir, 'identity');

const stagedSchema = z.object({ keyPem: z.string(), certPem: z.string(), caPem: z.string() });

type Material = z.infer<typeof stagedSchema>;

async function installMaterial(dir: string, m: Material): Promise<void> {
  await writeSecretFile(join(dir, 'key.pem'), m.keyPem);
  await writePublicFile(join(dir, 'cert.pem'), m.certPem);
  await writePublicFile(join(dir, 'ca.pem'), m.caPem);
}

/** Finishes a renewal a crash interrupted (see the file comment); a no-op otherwise. */
async function rollForward(dir: string): Promise<void> {
  const staged = join(dir, 'renewed.json');
  let text: string;
  try {
    text = await readFile(staged, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new SecondsiteError('SS_IO', `cannot read ${staged}`, {}, { cause: e });
  }
  const parsed = stagedSchema.safeParse(JSON.parse(text));
  // A torn staging file cannot exist (it is written atomically); anything else is not ours.
  if (!parsed.success) throw new SecondsiteError('SS_IO', `${staged} is not a renewal`);
  await installMaterial(dir, parsed.data);
  await unlink(staged);
}

/** Installs a renewed key, certificate and bundle as one step (see the file comment). */
export async function saveRenewedIdentity(dataDir: string, m: Material): Promise<void> {
  const dir = identityDir(dataDir);
  const staged = join(dir, 'renewed.json');
  await writeSecretFile(staged, JSON.stringify(m));
  await installMaterial(dir, m);
  await unlink(staged);
}

export async function loadHostIdentity(dataDir: string): Promise<HostIdentity | undefined> {
  const dir = identityDir(dataDir);
  await rollForward(dir);
  let text: string;
  try {
    text = await readFile(join(dir, 'host.json'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SecondsiteError('SS_IO', `cannot read ${join(dir, 'host.json')}`, {}, { cause: e });
  }
  const parsed = infoSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new SecondsiteError('SS_IO', `${join(dir, 'host.json')} is not a host identity`);
  }
  const read = (f: string): Promise<string> => readFile(join(dir, f), 'utf8');
  return {
    info: parsed.data,
    keyPem: await read('key.pem'),
    certPem: await read('cert.pem'),
    caPem: await read('ca.pem'),
  };
}

export async function saveHostIdentity(dataDir: string, id: HostIdentity): Promise<void> {
  const dir = identityDir(dataDir);
  await installMaterial(dir, id);
  await writePublicFile(join(dir, 'host.json'), `${JSON.stringify(id.info, null, 2)}\n`);
}

/** Rewrites host.json (atomically) with new pins, and ca.pem with the bundle they allow. */
export async function savePins(
  dataDir: string,
  info: HostIdentityInfo,
  caPem: string,
): Promise<void> {
  const dir = identityDir(dataDir);
  await writePublicFile(join(dir, 'host.json'), `${JSON.stringify(info, null, 2)}\n`);
  await writePublicFile(join(dir, 'ca.pem'), caPem);
}
