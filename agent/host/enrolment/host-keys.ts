/**
 * This host's long-term ticket keys (docs/security.md), made once the host is enrolled:
 *
 *   <data>/tickets/keys.json  {schemaVersion, keys: [{version, key (base64), createdAt}],
 *                              registered: the highest version the ticket service confirmed}
 *                             mode 0600, replaced atomically
 *   <data>/tickets/replay     the 8083 replay cache (common/tickets/replay-file.ts), 0600
 *
 * Version 1 is made with the replay file, so a missing replay file next to existing keys
 * means a lost one (the cache then refuses tickets for 5 minutes). `rotate()` makes version
 * n+1 and keeps n (tickets under it live at most a day; older versions are dropped). The keys
 * leave this machine only in the registration to the ticket service (host-tickets.ts).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { writeFileAtomicSync } from '../../../common/fs/atomic-file.ts';
import {
  KEY_BYTES,
  generateLongTermKey,
  type LongTermKey,
} from '../../../common/tickets/crypto.ts';
import { createReplayFile } from '../../../common/tickets/replay-file.ts';
import { identityDir } from './host-identity.ts';

const fileSchema = z.strictObject({
  schemaVersion: z.literal(1),
  keys: z
    .array(
      z.strictObject({ version: z.number().int().min(1), key: z.string(), createdAt: z.number() }),
    )
    .min(1),
  registered: z.number().int().min(0),
});
type KeysFile = z.infer<typeof fileSchema>;

export interface HostKeyring {
  /** The newest key (tickets to this host are issued under it once registered). */
  current(): LongTermKey;
  /** A key of a version, or undefined (the ticket server's keyFor). */
  keyFor(version: number): Buffer | undefined;
  /** The highest version the ticket service confirmed (0: none yet). */
  registered(): number;
  markRegistered(version: number): void;
  /** Makes version n+1 (kept with n); it is registered on the next connection. */
  rotate(now: number): LongTermKey;
  readonly replayPath: string;
}

export const ticketsDir = (dataDir: string): string => join(dataDir, 'tickets');

/** This host's identity URI from its enrolment (identity/host.json). */
export function enrolledIdentity(dataDir: string): string | undefined {
  const path = join(identityDir(dataDir), 'host.json');
  if (!existsSync(path)) return undefined;
  const info = JSON.parse(readFileSync(path, 'utf8')) as { identity?: unknown };
  return typeof info.identity === 'string' ? info.identity : undefined;
}

/** Loads the keys, making version 1 and the replay file on first use. */
export function ensureHostKeys(dataDir: string, now: number): HostKeyring {
  const dir = ticketsDir(dataDir);
  const path = join(dir, 'keys.json');
  const replayPath = join(dir, 'replay');
  let file: KeysFile;
  if (existsSync(path)) {
    const parsed = fileSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    if (!parsed.success) {
      throw new SecondsiteError('SS_IO', `${path} is not a valid key file`, { path });
    }
    file = parsed.data;
  } else {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const first = generateLongTermKey(1);
    file = {
      schemaVersion: 1,
      keys: [{ version: 1, key: first.key.toString('base64'), createdAt: now }],
      registered: 0,
    };
    createReplayFile(replayPath);
    writeFileAtomicSync(path, `${JSON.stringify(file)}\n`, 0o600);
  }
  const keys = new Map<number, Buffer>();
  const load = (): void => {
    keys.clear();
    for (const k of file.keys) {
      const b = Buffer.from(k.key, 'base64');
      if (b.length !== KEY_BYTES) throw new SecondsiteError('SS_IO', `${path}: bad key length`);
      keys.set(k.version, b);
    }
  };
  load();
  const save = (): void => {
    writeFileAtomicSync(path, `${JSON.stringify(file)}\n`, 0o600);
    load();
  };
  const newest = (): number => Math.max(...file.keys.map((k) => k.version));
  return {
    replayPath,
    current: () => ({ version: newest(), key: keys.get(newest())! }),
    keyFor: (v) => keys.get(v),
    registered: () => file.registered,
    markRegistered(version) {
      if (version <= file.registered) return;
      file = { ...file, registered: version };
      save();
    },
    rotate(at) {
      const next = generateLongTermKey(newest() + 1);
      const kept = file.keys.filter((k) => k.version === newest());
      file = {
        ...file,
        keys: [...kept, { version: next.version, key: next.key.toString('base64'), createdAt: at }],
      };
      save();
      return next;
    },
  };
}
