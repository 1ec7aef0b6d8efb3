/**
 * Durable small-file replacement, for the state files every process keeps (VM configs, journal
 * and sync state): write a temporary file with its final mode, fsync it, rename it over the
 * target, fsync the folder. A crash at any moment leaves the old file or the new one, never
 * half of one, and a completed call survives a power loss. (Keys and certificates go through
 * certs/files.ts, which also creates private folders.)
 */
import { closeSync, constants, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** fsync a folder so that creates, renames and unlinks in it survive a power loss. */
export function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replaces `path` with `contents` atomically and durably; the file gets `mode` (default 0600). */
export function writeFileAtomicSync(path: string, contents: string | Buffer, mode = 0o600): void {
  const tmp = `${path}.tmp`;
  const body = typeof contents === 'string' ? Buffer.from(contents) : contents;
  const fd = openSync(tmp, 'w', mode);
  try {
    let done = 0;
    while (done < body.length) done += writeSync(fd, body, done, body.length - done, done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDirSync(dirname(path));
}
