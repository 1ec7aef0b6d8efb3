/**
 * A VM's replication pairing on this host: which role the host plays, which peer host (by
 * identity and address) it replicates with, under which epoch. Kept in
 * <data>/vms/<vm>/pairing.json, validated on read and replaced atomically (temporary file,
 * fsync, rename, fsync of the folder) so a crash leaves the old or the new pairing.
 *
 * The wire names a VM by its name (Hello.vm_id): both hosts keep the replica under the same
 * name, so the name is the pairing key. `baseline` is the seam for the initial copy:
 *   - 'zero': paired before protection while every disk read as zeros, so a replica of zeros
 *     equals the source at seq 0 and shipping from segment 1 is exact;
 *   - 'copied': an initial copy made the replica equal to the source at the replica store's
 *     lastApplied (set through VmManager.setBaseline by the initial-copy step);
 *   - 'initial-copy-required': the replica cannot be assumed equal to anything the journal
 *     continues from; the sender refuses to ship until an initial copy replaces this value;
 *   - 'resync-required': asked for by the administrator (resync, R20) or needed after a journal
 *     overflow or gap: the sender compares hashes with the replica and sends only the chunks
 *     that differ (agent/host/sync/resync-source.ts), then sets 'copied'.
 * `paused` (primary): nothing ships, the journal keeps recording; `retentionHours` (replica):
 * how long the recovery store keeps points.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { formatIdentity, hostIdentity, isValidIdentityName } from '../../../certs/identity.ts';
import { SecondsiteError, badInput } from '../../../common/errors/errors.ts';

export const pairingSchema = z.strictObject({
  schemaVersion: z.literal(1),
  role: z.enum(['primary', 'replica']),
  /** The peer host's name; its certificate must carry secondsite://<vault>/host/<peerHost>. */
  peerHost: z.string().refine(isValidIdentityName, 'not a host name'),
  /** host:port of the peer's replication port (only used by the primary, to dial; may be
   * empty on a replica). */
  peerAddress: z.union([z.literal(''), z.string().regex(/^[^\s]+:\d{1,5}$/)]),
  vault: z.string().min(1),
  /** Raised by the coordinator whenever replication starts afresh; both sides must agree. */
  epoch: z.number().int().min(0),
  /** zstd per chunk when both peers support it. @default true */
  compression: z.boolean(),
  baseline: z.enum(['zero', 'copied', 'initial-copy-required', 'resync-required']),
  /**
   * Primary: authenticate to the peer with tickets on its ticket port (peerAddress is then
   * that port) instead of certificates. Changing it under the same epoch keeps the baseline:
   * only the channel changes. @default false
   */
  ticketAuth: z.boolean().optional(),
  /** Primary: shipping paused by the administrator. @default false */
  paused: z.boolean().optional(),
  /** Replica: hours the recovery points are kept. @default 24 (the receiver's default) */
  retentionHours: z
    .number()
    .int()
    .min(1)
    .max(24 * 366)
    .optional(),
});

export type Pairing = z.infer<typeof pairingSchema>;
export type PairingRole = Pairing['role'];

export function pairingPath(vmDir: string): string {
  return join(vmDir, 'pairing.json');
}

/** The identity URI the peer's certificate must carry. */
export function peerUri(p: Pairing): string {
  return formatIdentity(hostIdentity(p.vault, p.peerHost));
}

export function readPairing(vmDir: string): Pairing | undefined {
  const path = pairingPath(vmDir);
  if (!existsSync(path)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new SecondsiteError('SS_IO', `cannot read ${path}`, { path }, { cause: e });
  }
  const parsed = pairingSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SecondsiteError('SS_IO', `${path}: ${issue?.path.join('.')}: ${issue?.message}`, {
      path,
    });
  }
  return parsed.data;
}

/** The same pairing, whatever the order of its keys. */
export function samePairing(a: Pairing, b: Pairing): boolean {
  const canon = (p: Pairing): string =>
    JSON.stringify(Object.fromEntries(Object.entries(p).sort(([x], [y]) => x.localeCompare(y))));
  return canon(a) === canon(b);
}

/** Validates then replaces the file atomically (see the file comment); returns what it wrote. */
export function writePairing(vmDir: string, pairing: Pairing): Pairing {
  const checked = pairingSchema.safeParse(pairing);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw badInput(issue?.path.join('.') || 'pairing', issue?.message ?? 'malformed');
  }
  const path = pairingPath(vmDir);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(checked.data, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncFolder(dirname(path));
  return checked.data;
}

export function removePairing(vmDir: string): void {
  rmSync(pairingPath(vmDir), { force: true });
  fsyncFolder(vmDir);
}

function fsyncFolder(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
