/**
 * The journal folder of one VM:
 *
 *   <dir>/000000000007.seg      sealed segment 7 (SEAL record fsynced, disks fsynced before the
 *                               rename), waiting to be shipped
 *   <dir>/000000000008.active   the segment taking writes; after a crash between a cut's seal
 *                               and its rename, the previous one may still be `.active` too
 *   <dir>/state.json            journaling | resync-required (journal-state.ts)
 *   <dir>/dirty.bitmap          only while resync-required (dirty-bitmap.ts)
 *   <dir>/*.tmp                 half-written replacements; deleted at open
 *
 * The name is a hint that saves a scan; the SEAL record is the truth about a segment.
 */
import { close, constants, fsync, open, readdirSync } from 'node:fs';
import { join } from 'node:path';

const SEQ_DIGITS = 12;

export type SegmentFileState = 'active' | 'sealed';

export interface SegmentFile {
  readonly seq: number;
  readonly state: SegmentFileState;
  readonly path: string;
}

export function segmentPath(dir: string, seq: number, state: SegmentFileState): string {
  const name = String(seq).padStart(SEQ_DIGITS, '0');
  return join(dir, `${name}.${state === 'active' ? 'active' : 'seg'}`);
}

/** Segment files in ascending seq order (an active and a sealed file never share a seq). */
export function listSegments(dir: string): SegmentFile[] {
  const out: SegmentFile[] = [];
  for (const name of readdirSync(dir)) {
    const m = /^(\d{12})\.(seg|active)$/.exec(name);
    if (!m?.[1]) continue;
    const seq = Number(m[1]);
    const state = m[2] === 'seg' ? 'sealed' : 'active';
    out.push({ seq, state, path: join(dir, name) });
  }
  return out.sort((a, b) => a.seq - b.seq);
}

export function listTempFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.tmp'))
    .map((n) => join(dir, n));
}

export { fsyncDirSync as fsyncDir } from '../../../common/fs/atomic-file.ts';

/** fsync of a folder on the thread pool: makes created, renamed or deleted entries durable. */
export function fsyncDirAsync(dir: string): Promise<void> {
  return new Promise((resolve, reject) =>
    open(dir, constants.O_RDONLY, (e, fd) => {
      if (e) return reject(e);
      fsync(fd, (err) => close(fd, () => (err ? reject(err) : resolve())));
    }),
  );
}
