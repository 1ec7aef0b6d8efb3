/**
 * Small JSON state files of the sync engines, and the initial copy's watermark.
 *
 * `<dir>/initial-copy.json`: how far an initial copy is durable on the replica, so that a
 * broken copy restarts there instead of from zero. Replaced atomically (tmp, fsync, rename,
 * fsync dir): a reader sees the old or the new version.
 *
 *   { version: 1, copyId, baseSeq, diskSizes, cursor: { disk, offset }, cleared }
 *
 * Everything before `cursor` (disks in index order) is fsynced. `cleared`: the replica images
 * were emptied (truncated to holes) when the copy began, so ranges the copy has not reached
 * yet read as zeros already.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { fsyncDirSync, writeFileAtomicSync } from '../../../common/fs/atomic-file.ts';
import type { GridCursor } from './chunk-grid.ts';

export interface CopyWatermark {
  readonly version: 1;
  readonly copyId: string;
  readonly baseSeq: number;
  readonly diskSizes: readonly number[];
  readonly cursor: GridCursor;
  readonly cleared: boolean;
}

const NAME = 'initial-copy.json';

export function readWatermark(dir: string): CopyWatermark | undefined {
  const w = readJsonFile<CopyWatermark>(dir, NAME);
  if (w && (w.version !== 1 || typeof w.copyId !== 'string')) {
    throw new SecondsiteError('SS_IO', `initial copy watermark invalid in ${dir}`, { dir });
  }
  return w;
}

export function writeWatermark(dir: string, w: CopyWatermark): void {
  writeJsonFile(dir, NAME, w);
}

export function removeWatermark(dir: string): void {
  removeJsonFile(dir, NAME);
}

/** Reads `<dir>/<name>` as JSON; undefined when missing. */
export function readJsonFile<T>(dir: string, name: string): T | undefined {
  const path = join(dir, name);
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (cause) {
    throw new SecondsiteError('SS_IO', `sync state file unreadable: ${path}`, { path }, { cause });
  }
}

/** Replaces `<dir>/<name>` atomically and durably. */
export function writeJsonFile(dir: string, name: string, value: unknown): void {
  writeFileAtomicSync(join(dir, name), JSON.stringify(value) + '\n');
}

export function removeJsonFile(dir: string, name: string): void {
  rmSync(join(dir, name), { force: true });
  fsyncDirSync(dir);
}
