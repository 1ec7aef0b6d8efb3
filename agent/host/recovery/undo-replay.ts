/**
 * Writing undo data back onto the replica disks: rolling back an interrupted apply and
 * reverting to an older point. Both are idempotent, which is what makes them crash-safe:
 *
 * - Each undo file covers exactly the ranges its segment wrote and holds their contents from
 *   just before it, so writing it back again over a half-written copy of itself gives the
 *   same result.
 * - A revert to point T writes the undo files of segments L, L-1, …, T+1 in that order. The
 *   last write to any byte then comes from the oldest segment after T that touched it, which
 *   is that byte's value at T (resolve.ts); bytes no such segment touched were never changed.
 *   Whatever a killed earlier attempt wrote is overwritten, so re-running from L converges.
 *
 * Every file is checksum-verified before its first byte is written, so corrupt undo data is
 * refused before it can leave the disks at a mix of points.
 */
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { RawDisk } from '../vm/raw-disk.ts';
import { readUndoFile, restoreUndo, undoPath, verifyUndoData, type UndoFile } from './undo-file.ts';

export interface ReplayContext {
  readonly undoDir: string;
  readonly disks: readonly RawDisk[];
  readonly buffer: Buffer;
}

/** Loads the undo file of `seq`, or throws SS_UNDO_CORRUPT saying why it cannot be used. */
export function loadUndo(ctx: ReplayContext, seq: number): UndoFile {
  const file = readUndoFile(undoPath(ctx.undoDir, seq), seq, ctx.disks.length);
  if (typeof file === 'string') {
    throw new SecondsiteError(
      'SS_UNDO_CORRUPT',
      `undo data of segment ${seq} is unusable: ${file}`,
      {
        seq,
        problem: file,
      },
    );
  }
  return file;
}

/** Checks every file's data checksums; throws SS_UNDO_CORRUPT before anything is written. */
export function verifyAll(ctx: ReplayContext, files: readonly UndoFile[]): void {
  for (const file of files) verifyUndoData(file, ctx.buffer);
}

/**
 * Writes `files` back in the given order (newest first for a revert), then fsyncs the disks.
 * Verifies them first unless the caller just did.
 */
export function writeBack(
  ctx: ReplayContext,
  files: readonly UndoFile[],
  opts: { verified?: boolean } = {},
): void {
  if (!opts.verified) verifyAll(ctx, files);
  for (const file of files) restoreUndo(file, ctx.disks, ctx.buffer);
  for (const disk of ctx.disks) disk.syncSync();
}
