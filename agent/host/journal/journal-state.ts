/**
 * `<dir>/state.json`: the few facts about a VM journal that the segment files cannot carry.
 * Replaced atomically (write tmp, fsync, rename, fsync dir), so a reader sees the old or the
 * new version, never a mix.
 *
 * - state: journaling | resync-required.
 * - nextSeq: the lowest seq not yet used. Segments are deleted when shipped or dropped on
 *   overflow, so the files alone cannot prove a seq was never handed out; the file is rewritten
 *   whenever segments are dropped wholesale, and at open (max of this and the files wins).
 * - openBootId: the kernel boot id while the journal is open, absent after a clean close. Found
 *   set at open with a different boot id, the host went down with the journal open: the page
 *   cache may have reached the disks in another order than the journal (a disk block written
 *   with its record lost), so the journal cannot prove what the disks hold.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { writeFileAtomicSync } from '../../../common/fs/atomic-file.ts';
import type { JournalState } from './types.ts';

export interface JournalStateFile {
  readonly version: 1;
  readonly state: JournalState;
  readonly nextSeq: number;
  readonly openBootId?: string;
}

const NAME = 'state.json';

export function readStateFile(dir: string): JournalStateFile | undefined {
  const path = join(dir, NAME);
  if (!existsSync(path)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new SecondsiteError(
      'SS_JOURNAL_CORRUPT',
      `journal state file unreadable: ${path}`,
      { path },
      { cause },
    );
  }
  const s = parsed as Partial<JournalStateFile> | null;
  const okState = s?.state === 'journaling' || s?.state === 'resync-required';
  if (!s || s.version !== 1 || !okState || !Number.isSafeInteger(s.nextSeq)) {
    throw new SecondsiteError('SS_JOURNAL_CORRUPT', `journal state file invalid: ${path}`, {
      path,
    });
  }
  return s as JournalStateFile;
}

export function writeStateFile(dir: string, s: JournalStateFile): void {
  writeFileAtomicSync(join(dir, NAME), JSON.stringify(s) + '\n');
}

/** The kernel's boot id, or undefined where the platform has none (then the check is off). */
export function currentBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}
