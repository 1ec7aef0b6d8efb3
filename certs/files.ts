/**
 * Writing keys and certificates to disk. A reader must never see a half-written key, nor a key
 * readable by others even for a moment, so every write goes to a temporary file created with
 * its final mode, is fsynced, renamed over the target, and the folder is fsynced so the rename
 * survives a crash. Private keys are always written through writeSecretFile.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SecondsiteError } from '../common/errors/errors.ts';

export const SECRET_FILE_MODE = 0o600;
export const PUBLIC_FILE_MODE = 0o644;
export const SECRET_DIR_MODE = 0o700;

/** Writes `contents` to `path` with mode 0600, atomically; missing folders are made 0700. */
export async function writeSecretFile(path: string, contents: string | Uint8Array): Promise<void> {
  await writeAtomic(path, contents, SECRET_FILE_MODE);
}

/** Writes `contents` to `path` with mode 0644, atomically (certificates, CA bundles). */
export async function writePublicFile(path: string, contents: string | Uint8Array): Promise<void> {
  await writeAtomic(path, contents, PUBLIC_FILE_MODE);
}

async function writeAtomic(
  path: string,
  contents: string | Uint8Array,
  mode: number,
): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    // Folders that hold keys are private; existing folders are left as the operator made them.
    await mkdir(dir, { recursive: true, mode: SECRET_DIR_MODE });
    const fh = await open(tmp, 'wx', mode);
    try {
      // The umask can only remove bits, and 'wx' made a new file, but chmod makes the mode
      // exact whatever the umask.
      await fh.chmod(mode);
      await fh.writeFile(contents);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    await syncDir(dir);
  } catch (cause) {
    await unlink(tmp).catch(() => undefined);
    throw new SecondsiteError('SS_IO', `could not write ${path}`, { path }, { cause });
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
