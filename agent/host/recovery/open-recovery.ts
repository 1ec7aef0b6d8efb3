/**
 * What openReplicaStore does before it serves anything, so that after any crash the replica
 * disks are exactly at some recovery point:
 *
 * 1. An `apply` intent means apply step 3 may have half-written segment S: write S's undo file
 *    back (it was fsynced before the intent), fsync, clear the intent, delete the file. The
 *    disks are at point S-1 again and the sender's resend of S applies it once. (Rolling
 *    forward is impossible: the segment itself is not kept here.)
 * 2. Undo files no retained point needs are deleted: leftovers of an apply killed in step 1
 *    (seq > lastApplied), and files a prune, commit or revert had not yet removed.
 * 3. The remaining files' headers and tables are read into the index. A file that cannot be
 *    read makes every point older than its segment unreadable: those points are dropped with
 *    a warning rather than refusing to open (replication must go on).
 * 4. A `revert` intent to point T is completed: the undo files after T are written back newest
 *    first (idempotent, see undo-replay.ts), then the later points are dropped. When a resync's
 *    undo log (resync-layer.ts) lies between T and now, it is written back in its place in that
 *    order: after the files of segments past the resync, before those up to its start.
 */
import { readdirSync, unlinkSync } from 'node:fs';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { RecoveryDb, RecoveryDbState, StoredPoint } from './recovery-db.ts';
import { undoNeeded } from './retention.ts';
import type { OpenReport } from './types.ts';
import { parseUndoFileName } from './undo-format.ts';
import { readUndoFile, undoPath, type UndoFile } from './undo-file.ts';
import { UndoIndex } from './undo-index.ts';
import { loadUndo, verifyAll, writeBack, type ReplayContext } from './undo-replay.ts';

export interface RecoveredState {
  readonly lastApplied: number;
  readonly points: StoredPoint[];
  readonly index: UndoIndex;
  readonly report: OpenReport;
}

export async function recoverOnOpen(
  ctx: ReplayContext,
  db: RecoveryDb,
  loaded: RecoveryDbState,
  log: Logger,
  layer?: RevertLayer,
): Promise<RecoveredState> {
  let rolledBack: number | undefined;
  if (loaded.intent?.op === 'apply') {
    rolledBack = loaded.intent.seq;
    log.warn({ seq: rolledBack }, 'rolling back an interrupted apply');
    writeBack(ctx, [loadUndo(ctx, rolledBack)]);
    await db.clearIntent();
    removeFile(undoPath(ctx.undoDir, rolledBack));
  }
  let points = loaded.points;
  const { lastApplied } = loaded;
  let removed = 0;
  const index = new UndoIndex();
  const lost: number[] = [];
  for (const seq of undoSeqsOnDisk(ctx.undoDir)) {
    if (!undoNeeded(seq, points[0]?.record.segment, lastApplied)) {
      removeFile(undoPath(ctx.undoDir, seq));
      removed++;
      continue;
    }
    const file = readUndoFile(undoPath(ctx.undoDir, seq), seq, ctx.disks.length);
    if (typeof file === 'string') {
      log.error({ seq, problem: file }, 'undo file unreadable: older points are lost');
      lost.push(seq);
    } else index.add(file);
  }
  const pointsLost: string[] = [];
  if (lost.length > 0) {
    const newest = Math.max(...lost);
    const gone = points.filter((p) => p.record.segment < newest);
    points = points.filter((p) => p.record.segment >= newest);
    await db.dropPoints(gone.map((p) => p.record.segment));
    pointsLost.push(...gone.map((p) => p.record.id));
    // Every point a lost file served is gone now, so no retained point needs the lost files.
    for (const seq of lost) removeFile(undoPath(ctx.undoDir, seq));
    removed += lost.length + dropUnneeded(ctx.undoDir, index, points, lastApplied);
  }
  const state = { lastApplied, points, index };
  const report = { rolledBack, undoFilesRemoved: removed, pointsLost };
  if (loaded.intent?.op === 'revert') {
    const target = loaded.intent.target;
    const done = await completeRevert(ctx, db, state, target, log, layer ? { layer } : {});
    return { ...done, report: { ...report, revertCompleted: loaded.intent.target } };
  }
  return { ...state, report };
}

/**
 * Writes back the undo data after point `target` (intent already durable), drops the later
 * points and their undo files. Used by revertTo and, after a crash, by open.
 */
export async function completeRevert(
  ctx: ReplayContext,
  db: RecoveryDb,
  state: LiveState,
  target: number,
  log: Logger,
  opts: { verified?: boolean; layer?: RevertLayer } = {},
): Promise<LiveState> {
  const files = revertFiles(state, target);
  log.info({ target, segments: files.length }, 'reverting replica disks');
  const layer = opts.layer && target <= opts.layer.after ? opts.layer : undefined;
  if (layer) {
    if (!opts.verified) verifyAll(ctx, files);
    writeBack(
      ctx,
      files.filter((f) => f.seq > layer.after),
      { verified: true },
    );
    layer.writeBack();
    writeBack(
      ctx,
      files.filter((f) => f.seq <= layer.after),
      { verified: true },
    );
  } else writeBack(ctx, files, opts);
  const points = state.points.filter((p) => p.record.segment <= target);
  const drop = state.points.filter((p) => p.record.segment > target).map((p) => p.record.segment);
  await db.resetTo(target, drop, { dropResync: layer !== undefined });
  layer?.remove();
  dropUnneeded(ctx.undoDir, state.index, points, target);
  return { lastApplied: target, points, index: state.index };
}

/** A resync's undo log as a revert sees it (replica-store.ts adapts ResyncLayer). */
export interface RevertLayer {
  /** lastApplied when the resync began: points up to it predate the resync. */
  readonly after: number;
  /** Writes the pre-resync bytes back and fsyncs the disks. */
  writeBack(): void;
  /** Deletes the log once the revert is recorded. */
  remove(): void;
}

export interface LiveState {
  lastApplied: number;
  points: StoredPoint[];
  index: UndoIndex;
}

/** The undo files to write back to reach point `target`, newest first. */
export function revertFiles(state: LiveState, target: number): UndoFile[] {
  if (!state.points.some((p) => p.record.segment === target)) {
    throw new SecondsiteError(
      'SS_UNDO_CORRUPT',
      `cannot revert to the point of segment ${target}: its undo data is lost`,
      { target },
    );
  }
  const later = state.index.list().filter((seq) => seq > target && seq <= state.lastApplied);
  return later.reverse().map((seq) => state.index.get(seq)!);
}

/** Deletes indexed undo files no retained point needs, oldest first; returns how many. */
export function dropUnneeded(
  undoDir: string,
  index: UndoIndex,
  points: readonly StoredPoint[],
  lastApplied: number,
): number {
  let removed = 0;
  for (const seq of [...index.list()]) {
    if (undoNeeded(seq, points[0]?.record.segment, lastApplied)) continue;
    index.remove(seq);
    removeFile(undoPath(undoDir, seq));
    removed++;
  }
  return removed;
}

function undoSeqsOnDisk(undoDir: string): number[] {
  return readdirSync(undoDir)
    .map(parseUndoFileName)
    .filter((seq): seq is number => seq !== undefined)
    .sort((a, b) => a - b);
}

export function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
