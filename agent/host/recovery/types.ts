/**
 * Public shapes of the replica side's recovery store: what the replication receiver, test
 * failover and failover/commit call on the target host.
 */
import type { Clock } from '../../../common/time/clock.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { Extent, RecoveryPointRecord } from '../journal/types.ts';
import type { RawDisk } from '../vm/raw-disk.ts';
import type { LevelLike, ResyncCursor, ResyncRecord } from './recovery-db.ts';
import type { IncomingSegment } from './segment-check.ts';

export type { IncomingSegment } from './segment-check.ts';
export type { ResyncCursor, ResyncRecord } from './recovery-db.ts';

export interface ReplicaStoreOptions {
  /** This VM's recovery folder (LevelDB in `db/`, undo files in `undo/`); created if missing. */
  readonly dir: string;
  readonly vmId: string;
  /** The replica disks, in the VM's disk order. The store is their only writer while open. */
  readonly disks: readonly RawDisk[];
  readonly clock: Clock;
  readonly log: Logger;
  /** Points older than this are pruned by prune(). */
  readonly retentionHours: number;
  /** App-consistent points are kept this long instead. @default retentionHours */
  readonly appConsistentRetentionHours?: number;
  /**
   * The image files of `disks`, same order. When given, old contents for undo data are read
   * with many reads in flight on read-only descriptors (3–4× faster on an uncached replica);
   * otherwise one at a time through the disks. @default undefined
   */
  readonly diskPaths?: readonly string[];
  /** Size of the reused I/O batch buffer. @default 8 MiB */
  readonly batchBytes?: number;
  /**
   * Points pinned from the moment the store opens (holder → point id), so a test or failover
   * view that outlived a restart keeps its point before any segment or prune runs. A point no
   * longer retained is skipped with a warning. @default none
   */
  readonly pinned?: Readonly<Record<string, string>>;
  /** Tests only: an open-able abstract-level database (e.g. memory-level) instead of `db/`. */
  readonly level?: LevelLike;
}

/**
 * ready: idle, every call allowed. applying / reverting: a mutation is running (mutations queue
 * behind it; reads are served, during a revert only of points it keeps). failed: a mutation
 * failed after it started changing the disks; reopen the store to roll back or finish it.
 * closed: nothing allowed.
 */
export type ReplicaStoreState = 'ready' | 'applying' | 'reverting' | 'failed' | 'closed';

/** What open() found and did, for logs and tests. */
export interface OpenReport {
  /** An apply of this seq was interrupted and has been rolled back. */
  readonly rolledBack?: number;
  /** A revert to the point of this seq was interrupted and has been completed. */
  readonly revertCompleted?: number;
  /** Undo files removed because no retained point needed them. */
  readonly undoFilesRemoved: number;
  /** Points dropped because undo data they depend on was missing or unreadable. */
  readonly pointsLost: readonly string[];
}

export interface ReplicaStats {
  readonly vmId: string;
  readonly count: number;
  readonly oldest: RecoveryPointRecord | undefined;
  readonly newest: RecoveryPointRecord | undefined;
  /** Bytes of undo files kept on disk. */
  readonly undoBytes: number;
  readonly lastApplied: number;
  /** Applies since open whose undo file was built while the segment arrived (stageUndo). */
  readonly stagedApplies: number;
}

export type ApplyResult = 'applied' | 'duplicate';

export interface ReplicaStore {
  readonly vmId: string;
  readonly state: ReplicaStoreState;
  /** Seq of the last segment applied; the replica disks are exactly at its point. */
  readonly lastApplied: number;
  readonly openReport: OpenReport;
  /**
   * Applies segment `seq` exactly once: 'duplicate' (no effect) for seq <= lastApplied,
   * SS_SEGMENT_OUT_OF_ORDER for a gap, SS_PROTOCOL for a malformed segment. Resolves after
   * undo data, disk writes and the recovery point are all durable: the caller may then ack.
   */
  /**
   * Starts building the undo file of segment `seq` while it arrives (undo-stager.ts); the
   * caller adds the verified-chunk extents in order, `apply` finishes it. Undefined when it
   * cannot help (not the next segment, another change under way).
   */
  /**
   * Starts step 1 of segment `seq` ahead of its apply; `live`: the segment arrives over a
   * whole cycle (ranges first touched, in write order; the data is synced as it goes).
   */
  stageUndo(seq: number, opts?: { readonly live?: boolean }): UndoStaging | undefined;
  apply(seg: IncomingSegment): Promise<ApplyResult>;
  /** Retained points, oldest first. */
  points(): RecoveryPointRecord[];
  latest(): RecoveryPointRecord | undefined;
  stats(): ReplicaStats;
  /** The bytes of [offset, offset+length) of disk `disk` exactly as they were at `pointId`. */
  read(disk: number, offset: number, length: number, pointId: string): Buffer;
  /** Prunes points past retention (never the latest) and the undo data only they needed. */
  prune(now?: number): Promise<RecoveryPointRecord[]>;
  /**
   * Keeps `pointId` retained for `holder` (one pin per holder; pinning again moves it) until
   * unpin(holder): prune skips it, and revertTo/commit that would drop it, rebase and
   * beginResync are refused with SS_CONFLICT. Ordered after running mutations, so an apply in
   * flight completes first. SS_NOT_FOUND when the point is not retained.
   */
  pin(holder: string, pointId: string): Promise<void>;
  unpin(holder: string): void;
  /** holder → pinned point id. */
  pins(): ReadonlyMap<string, string>;
  /** Rolls the replica disks back to `pointId` and drops later points (unplanned failover). */
  revertTo(pointId: string): Promise<void>;
  /** Commits a failover: optionally reverts to `pointId`, then discards all other points. */
  commit(pointId?: string): Promise<void>;
  /**
   * After the disks were rewritten outside the journal (resync): drops every point and all
   * undo data and expects segment `lastApplied + 1` next.
   */
  rebase(lastApplied: number): Promise<void>;
  /**
   * Resync (store-resync.ts): begins or resumes resync `id`; the returned record's cursor says
   * where the compare resumes. While it runs, segments are refused with SS_CONFLICT and every
   * retained point still reads (and reverts) exactly.
   */
  beginResync(id: string): Promise<ResyncRecord>;
  /**
   * Writes differing chunks (sorted by (disk, offset); data null = zeros) after saving their
   * current bytes durably, then records `cursor` (everything before it is compared). Resolves
   * when all of that is durable.
   */
  applyResyncChunks(id: string, extents: readonly Extent[], cursor: ResyncCursor): Promise<void>;
  /**
   * Ends the compare: lastApplied = baseSeq, so segment baseSeq + 1 is expected next and makes
   * the replica exact. 'kept': older points stay readable; 'rebase': they were dropped (there
   * were none, or baseSeq does not follow them).
   */
  finishResync(id: string, baseSeq: number): Promise<'kept' | 'rebase'>;
  /** The running or finished resync whose undo log is kept, if any. */
  resyncState(): ResyncRecord | undefined;
  resyncStats(): { undoBytes: number; coveredBytes: number };
  close(): Promise<void>;
}

/** What a receiver sees of an undo staging: it feeds extents, the store does the rest. */
export interface UndoStaging {
  add(extents: readonly Extent[]): Promise<void>;
}
