/**
 * <data>/host-join-token (0600): what a host needs to join this provider, like a k3s node token:
 * the fingerprint of the provider's CA (the host pins it) and a secret. The provider keeps
 * only the secret's hash (<data>/identity/host-join-token.sha256). Made once; kept across
 * restarts so hosts already given the token keep working.
 */
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSecretFile } from '../../../certs/files.ts';
import { fingerprintOfPem } from '../../../certs/inspect.ts';
import {
  formatJoinToken,
  generateSecret,
  hashSecret,
  parseJoinToken,
} from '../../../certs/secrets.ts';

export async function ensureHostJoinToken(dataDir: string, providerCaPem: string): Promise<string> {
  const path = join(dataDir, 'host-join-token');
  const caFingerprint = fingerprintOfPem(providerCaPem);
  try {
    await access(path);
    const existing = parseJoinToken(await readFile(path, 'utf8'));
    if (existing.caFingerprint === caFingerprint) return path;
  } catch {
    // missing, unreadable or for an older CA: make a new one
  }
  const secret = generateSecret();
  await writeSecretFile(join(dataDir, 'identity', 'host-join-token.sha256'), hashSecret(secret));
  await writeSecretFile(path, `${formatJoinToken({ caFingerprint, secret })}\n`);
  return path;
}

/**
 * After a CA rotation activated the successor, the provider presents a chain through the new
 * CA, so the token names it from then on; the secret (and so its hash) is kept, and a host
 * given the old token is told by pinProvider to fetch the new one.
 */
export async function renameTokenCa(dataDir: string, providerCaPem: string): Promise<void> {
  const path = join(dataDir, 'host-join-token');
  const caFingerprint = fingerprintOfPem(providerCaPem);
  const existing = parseJoinToken(await readFile(path, 'utf8'));
  if (existing.caFingerprint === caFingerprint) return;
  await writeSecretFile(path, `${formatJoinToken({ caFingerprint, secret: existing.secret })}\n`);
}
