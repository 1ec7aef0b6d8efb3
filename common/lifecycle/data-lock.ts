/**
 * One process per data folder. The lock is a file created with O_EXCL holding the owner's pid;
 * a lock left by a process that no longer exists (kill -9) is taken over, so a crash never
 * blocks a restart.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync, constants } from 'node:fs';
import { join } from 'node:path';
import { SecondsiteError } from '../errors/errors.ts';

export interface DataLock {
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Folders this process holds: a lock file naming our own pid is ours only if listed here. */
const heldHere = new Set<string>();

export function lockDataFolder(dir: string): DataLock {
  const path = join(dir, 'LOCK.pid');
  if (heldHere.has(path)) {
    throw new SecondsiteError(
      'SS_DATA_FOLDER_LOCKED',
      `data folder ${dir} is in use by this process`,
      {
        dir,
        pid: process.pid,
      },
    );
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      heldHere.add(path);
      return {
        release(): void {
          if (!heldHere.delete(path)) return;
          try {
            unlinkSync(path);
          } catch {
            // already gone: nothing to release
          }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
      // Our own pid in the file without an entry in heldHere is a crashed earlier process
      // whose pid was reused: stale, like any dead owner.
      if (Number.isInteger(owner) && owner !== process.pid && alive(owner)) {
        throw new SecondsiteError(
          'SS_DATA_FOLDER_LOCKED',
          `data folder ${dir} is in use by process ${owner}`,
          { dir, pid: owner },
        );
      }
      unlinkSync(path); // stale: its owner is gone
    }
  }
  throw new SecondsiteError('SS_DATA_FOLDER_LOCKED', `could not lock data folder ${dir}`, { dir });
}
