/**
 * The replay cache on disk (replay-cache.ts explains why it persists): an append-only file of
 * 40-byte records, digest (32 bytes) ‖ expiry (ms since the epoch, 8 bytes big-endian), after
 * an 8-byte magic. Each accepted authenticator is appended and fdatasynced before the server
 * answers (one ~0.3 ms sync per connection, not per message). Mode 0600 in the host's data
 * folder.
 *
 * Trust on load:
 *  - the file exists with its magic → trusted; a torn last record (a crash mid-append) is
 *    dropped: its append never returned, so the server never accepted that authenticator;
 *  - the file is missing or has no magic → untrusted (the cache refuses tickets for one skew
 *    window). The file is made with `createReplayFile` when the host gets its long-term key
 *    (enrolment), so a missing file means a lost one, not a first start.
 */
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  openSync,
  readFileSync,
  writeSync,
  constants,
} from 'node:fs';
import { writeFileAtomicSync } from '../fs/atomic-file.ts';
import type { ReplayEntry, ReplayStore } from './replay-cache.ts';

const MAGIC = Buffer.from('SSRPLY01', 'ascii');
const RECORD = 40;

function encode(entries: readonly ReplayEntry[]): Buffer {
  const out = Buffer.alloc(MAGIC.length + entries.length * RECORD);
  MAGIC.copy(out, 0);
  entries.forEach((e, i) => record(e).copy(out, MAGIC.length + i * RECORD));
  return out;
}

function record(e: ReplayEntry): Buffer {
  const r = Buffer.alloc(RECORD);
  e.digest.copy(r, 0, 0, 32);
  r.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(e.expiresAt))), 32);
  return r;
}

/** Makes an empty, trusted replay file (at enrolment, beside the long-term key). */
export function createReplayFile(path: string): void {
  writeFileAtomicSync(path, encode([]), 0o600);
}

export class ReplayFileStore implements ReplayStore {
  private fd: number | undefined;

  constructor(private readonly path: string) {}

  load(): ReplayEntry[] | undefined {
    if (!existsSync(this.path)) return undefined;
    let buf: Buffer;
    try {
      buf = readFileSync(this.path);
    } catch {
      return undefined;
    }
    if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
      return undefined;
    }
    const entries: ReplayEntry[] = [];
    for (let at = MAGIC.length; at + RECORD <= buf.length; at += RECORD) {
      entries.push({
        digest: Buffer.from(buf.subarray(at, at + 32)),
        expiresAt: Number(buf.readBigUInt64BE(at + 32)),
      });
    }
    return entries;
  }

  append(entry: ReplayEntry): void {
    this.fd ??= openSync(
      this.path,
      constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT,
      0o600,
    );
    const r = record(entry);
    let done = 0;
    while (done < r.length) done += writeSync(this.fd, r, done, r.length - done);
    fdatasyncSync(this.fd);
  }

  rewrite(entries: ReplayEntry[]): void {
    this.close();
    writeFileAtomicSync(this.path, encode(entries), 0o600);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
