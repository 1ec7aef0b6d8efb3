/**
 * Retention decisions (pure). R17: points are kept for the retention window, older ones pruned.
 *
 * Invariants the store relies on:
 * - the latest point is never pruned (the replica disk *is* that point, and the sender's next
 *   segment builds on it);
 * - the undo file of segment S is needed exactly while some retained point is older than S
 *   (reading point P uses the undo data of every segment after P), so pruning the oldest
 *   points is what frees undo data; pruning a point in the middle frees nothing by itself.
 */
import type { RecoveryPointType } from '../journal/types.ts';

export interface RetentionRules {
  /** Points older than this (ms before `now`) are pruned. */
  readonly retentionMs: number;
  /** App-consistent points use this window instead when given. @default retentionMs */
  readonly appConsistentRetentionMs?: number;
}

export interface RetentionCandidate {
  readonly seq: number;
  readonly time: number;
  readonly type: RecoveryPointType;
}

/** The seqs of the points to prune, ascending. `points` must be sorted by seq. */
export function pointsToPrune(
  points: readonly RetentionCandidate[],
  now: number,
  rules: RetentionRules,
): number[] {
  const latest = points.at(-1);
  const drop: number[] = [];
  for (const point of points) {
    if (point === latest) break;
    const window =
      point.type === 'app-consistent'
        ? (rules.appConsistentRetentionMs ?? rules.retentionMs)
        : rules.retentionMs;
    if (point.time < now - window) drop.push(point.seq);
  }
  return drop;
}

/**
 * Whether the undo file of segment `seq` must be kept: it was applied (seq <= lastApplied) and
 * a retained point precedes it. `oldestPointSeq` is undefined when no point is retained.
 */
export function undoNeeded(
  seq: number,
  oldestPointSeq: number | undefined,
  lastApplied: number,
): boolean {
  return oldestPointSeq !== undefined && seq > oldestPointSeq && seq <= lastApplied;
}
