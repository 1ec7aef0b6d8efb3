/**
 * The replica store's durable state: one LevelDB per replicated VM (the only module of this
 * folder that imports `level`). Every write that the apply protocol depends on is a sync write.
 *
 * Key tree (values are JSON strings):
 *
 *   schemaVersion          → 1
 *   meta                   → { vmId, diskSizes }           checked at every open
 *   lastApplied            → seq of the last segment whose apply committed (0 = none)
 *   intent                 → { op: 'apply', seq }          step 2 of apply: disks may be mid-apply
 *                          | { op: 'revert', target }      revertTo: disks may be mid-revert
 *   point!<seq, 16 digits> → { record, undoBytes }         one per retained recovery point
 *   resync                 → ResyncRecord                  while a resync's undo log exists
 *
 * A point's seq is the segment it sealed (record.segment); undoBytes is the size of that
 * segment's undo file (0 when the segment changed nothing).
 */
import { Level } from 'level';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { RecoveryPointRecord } from '../journal/types.ts';

const SCHEMA_VERSION = 1;
const POINT_PREFIX = 'point!';
const SYNC = { sync: true } as const;

export type RecoveryIntent =
  | { readonly op: 'apply'; readonly seq: number }
  | { readonly op: 'revert'; readonly target: number };

/**
 * A resync in progress or finished (store-resync.ts). running: chunks are being compared and
 * written, `cursor` is where a resumed compare starts, no segment may be applied. finished:
 * lastApplied was set to `base` in the same batch; the undo log stays while a point older
 * than the resync (seq <= after) is retained. `undo` false: no point was retained when the
 * resync began, so nothing needed saving.
 */
/** Everything before (disk, offset), disks in index order, has been compared. */
export interface ResyncCursor {
  readonly disk: number;
  readonly offset: number;
}

export interface ResyncRecord {
  readonly id: string;
  readonly after: number;
  readonly state: 'running' | 'finished';
  readonly cursor: ResyncCursor;
  readonly undo: boolean;
  readonly base?: number;
}

export interface StoredPoint {
  readonly record: RecoveryPointRecord;
  readonly undoBytes: number;
}

export interface RecoveryDbMeta {
  readonly vmId: string;
  readonly diskSizes: readonly number[];
}

export interface RecoveryDbState {
  readonly lastApplied: number;
  readonly intent: RecoveryIntent | undefined;
  /** Sorted by seq. */
  readonly points: StoredPoint[];
}

type BatchOp = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

/** The part of abstract-level used here, so tests can pass a `memory-level` instance. */
export interface LevelLike {
  open(): Promise<void>;
  get(key: string): Promise<string | undefined>;
  put(key: string, value: string, opts?: { sync?: boolean }): Promise<void>;
  batch(ops: BatchOp[], opts?: { sync?: boolean }): Promise<void>;
  values(range: { gte: string; lt: string }): AsyncIterable<string>;
  close(): Promise<void>;
}

/** The on-disk database at `path` (not yet opened); exported for fault-injecting wrappers. */
export function openLevel(path: string): LevelLike {
  return new Level<string, string>(path) as unknown as LevelLike;
}

function pointKey(seq: number): string {
  return POINT_PREFIX + String(seq).padStart(16, '0');
}

export class RecoveryDb {
  private constructor(private readonly db: LevelLike) {}

  /** Opens (creating if needed) the database at `path`, or wraps `db` when given (tests). */
  static async open(path: string, db?: LevelLike): Promise<RecoveryDb> {
    const level = db ?? openLevel(path);
    await level.open();
    return new RecoveryDb(level);
  }

  /** Checks schema and meta (writing them on first open) and loads the whole state. */
  async load(meta: RecoveryDbMeta): Promise<RecoveryDbState> {
    const version = await this.db.get('schemaVersion');
    if (version === undefined) {
      await this.db.batch(
        [
          { type: 'put', key: 'schemaVersion', value: String(SCHEMA_VERSION) },
          { type: 'put', key: 'meta', value: JSON.stringify(meta) },
          { type: 'put', key: 'lastApplied', value: '0' },
        ],
        SYNC,
      );
    } else if (Number(version) !== SCHEMA_VERSION) {
      throw new SecondsiteError(
        'SS_STORE_VERSION',
        `recovery store schema ${version} is not supported`,
        { schemaVersion: version },
      );
    }
    this.checkMeta(meta, JSON.parse((await this.db.get('meta')) ?? 'null') as RecoveryDbMeta);
    const intentText = await this.db.get('intent');
    const points: StoredPoint[] = [];
    for await (const value of this.db.values({ gte: POINT_PREFIX, lt: POINT_PREFIX + '~' })) {
      points.push(JSON.parse(value) as StoredPoint);
    }
    return {
      lastApplied: Number((await this.db.get('lastApplied')) ?? '0'),
      intent: intentText === undefined ? undefined : (JSON.parse(intentText) as RecoveryIntent),
      points,
    };
  }

  private checkMeta(want: RecoveryDbMeta, have: RecoveryDbMeta | null): void {
    const same =
      have !== null &&
      have.vmId === want.vmId &&
      JSON.stringify(have.diskSizes) === JSON.stringify(want.diskSizes);
    if (!same) {
      throw new SecondsiteError(
        'SS_CONFLICT',
        `recovery store belongs to another VM or disk set (have ${JSON.stringify(have)})`,
        { have, want },
      );
    }
  }

  async putIntent(intent: RecoveryIntent): Promise<void> {
    await this.db.put('intent', JSON.stringify(intent), SYNC);
  }

  async clearIntent(): Promise<void> {
    await this.db.batch([{ type: 'del', key: 'intent' }], SYNC);
  }

  /** Step 4 of apply, atomically: the point exists, lastApplied moves, the intent is gone. */
  async commitPoint(point: StoredPoint): Promise<void> {
    await this.db.batch(
      [
        { type: 'put', key: pointKey(point.record.segment), value: JSON.stringify(point) },
        { type: 'put', key: 'lastApplied', value: String(point.record.segment) },
        { type: 'del', key: 'intent' },
      ],
      SYNC,
    );
  }

  async dropPoints(seqs: readonly number[]): Promise<void> {
    await this.db.batch(
      seqs.map((seq) => ({ type: 'del', key: pointKey(seq) })),
      SYNC,
    );
  }

  /**
   * Ends a revert or a rebase, atomically: drop `seqs`, set lastApplied, clear the intent (and
   * the resync record when the revert or rebase undid or superseded the resync).
   */
  async resetTo(
    lastApplied: number,
    dropSeqs: readonly number[],
    opts: { dropResync?: boolean } = {},
  ): Promise<void> {
    await this.db.batch(
      [
        ...dropSeqs.map((seq): BatchOp => ({ type: 'del', key: pointKey(seq) })),
        { type: 'put', key: 'lastApplied', value: String(lastApplied) },
        { type: 'del', key: 'intent' },
        ...(opts.dropResync ? [{ type: 'del', key: 'resync' } as const] : []),
      ],
      SYNC,
    );
  }

  async getResync(): Promise<ResyncRecord | undefined> {
    const text = await this.db.get('resync');
    return text === undefined ? undefined : (JSON.parse(text) as ResyncRecord);
  }

  async putResync(r: ResyncRecord): Promise<void> {
    await this.db.put('resync', JSON.stringify(r), SYNC);
  }

  /** Drops the resync record and `dropSeqs` points in one batch. */
  async dropResync(dropSeqs: readonly number[] = []): Promise<void> {
    await this.db.batch(
      [
        ...dropSeqs.map((seq): BatchOp => ({ type: 'del', key: pointKey(seq) })),
        { type: 'del', key: 'resync' },
      ],
      SYNC,
    );
  }

  /** Ends a resync's compare, atomically: the record says finished and lastApplied = base. */
  async finishResync(r: ResyncRecord & { base: number }): Promise<void> {
    await this.db.batch(
      [
        { type: 'put', key: 'resync', value: JSON.stringify(r) },
        { type: 'put', key: 'lastApplied', value: String(r.base) },
      ],
      SYNC,
    );
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
