/**
 * The replica side's recovery store for one VM: applies received segments exactly once with
 * undo data, keeps recovery points, serves point-in-time reads, prunes, reverts and commits.
 *
 * On-disk layout of `dir`:
 *   db/                    LevelDB, key tree in recovery-db.ts
 *   undo/<seq>.undo        undo data of applied segment <seq>, format in undo-format.ts
 *
 * The apply protocol (each step idempotent; open-recovery.ts repairs a kill -9 at any point):
 *   1. write the undo file — the current contents of every range the segment touches — with
 *      checksums, fsync it and the folder;
 *   2. record the intent "applying seq" (sync write);
 *   3. write the extents to the replica disks, fsync them;
 *   4. record the recovery point, lastApplied = seq and clear the intent in one sync batch;
 *   5. delete the undo file if no retained point is older (then nothing can read through it).
 * A crash before 2 leaves an orphan undo file (deleted at open); between 2 and 4 the apply is
 * rolled back at open; after 4 the segment is applied and a resend is answered 'duplicate'.
 *
 * Mutations run one at a time (a promise queue); reads are synchronous and may interleave
 * with a running mutation (see undo-index.ts for why that is safe).
 *
 * Resync (beginResync … finishResync) keeps the retained points readable: store-resync.ts.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SecondsiteError, badInput } from '../../../common/errors/errors.ts';
import type { Extent, RecoveryPointRecord } from '../journal/types.ts';
import {
  completeRevert,
  dropUnneeded,
  recoverOnOpen,
  removeFile,
  revertFiles,
  type LiveState,
} from './open-recovery.ts';
import { parallelReader, syncReader, type OldContentsReader } from './old-contents-reader.ts';
import { readAtPoint } from './point-read.ts';
import { extentWriter, type ExtentWriter } from './async-io.ts';
import { RecoveryDb, type ResyncRecord, type StoredPoint } from './recovery-db.ts';
import { StoreResync, type ResyncCursor } from './store-resync.ts';
import { pointsToPrune, undoNeeded } from './retention.ts';
import { checkSegment, type IncomingSegment } from './segment-check.ts';
import type {
  ApplyResult,
  OpenReport,
  ReplicaStats,
  ReplicaStore,
  ReplicaStoreOptions,
  ReplicaStoreState,
} from './types.ts';
import { MIN_BATCH_BYTES, undoPath, writeUndoFile, type UndoFile } from './undo-file.ts';
import type { UndoIndex } from './undo-index.ts';
import { UndoStager } from './undo-stager.ts';
import { verifyAll, type ReplayContext } from './undo-replay.ts';
import { validateOptions, type CompiledOptions } from './options.ts';

/**
 * A live segment's staged undo data is fdatasynced in the background every this many bytes
 * (one at a time), so the apply's own fdatasync after a cycle finds little left to write.
 */
const LIVE_SYNC_BYTES = 1024 * 1024;

export async function openReplicaStore(options: ReplicaStoreOptions): Promise<ReplicaStore> {
  const opts = validateOptions(options, MIN_BATCH_BYTES);
  const undoDir = join(opts.dir, 'undo');
  mkdirSync(undoDir, { recursive: true });
  const log = opts.log.child({ component: 'replica-store', vm: opts.vmId });
  const db = await RecoveryDb.open(join(opts.dir, 'db'), options.level);
  try {
    const diskSizes = opts.disks.map((d) => d.size);
    const loaded = await db.load({ vmId: opts.vmId, diskSizes });
    const ctx: ReplayContext = {
      undoDir,
      disks: opts.disks,
      buffer: Buffer.allocUnsafe(opts.batchBytes),
    };
    const resync = await StoreResync.load(db, opts.dir, opts.disks, ctx.buffer);
    const recovered = await recoverOnOpen(ctx, db, loaded, log, resync.revertLayer());
    log.info(
      { lastApplied: recovered.lastApplied, ...recovered.report, resync: resync.record },
      'replica store open',
    );
    const reader = opts.diskPaths ? parallelReader(opts.diskPaths) : syncReader(opts.disks);
    const writer = extentWriter(opts.disks);
    return new Store(opts, ctx, db, reader, writer, { ...recovered, resync }, log);
  } catch (e) {
    await db.close();
    throw e;
  }
}

class Store implements ReplicaStore {
  private readonly resync: StoreResync;
  state: ReplicaStoreState = 'ready';
  lastApplied: number;
  readonly openReport: OpenReport;
  private points_: StoredPoint[];
  private readonly byId = new Map<string, StoredPoint>();
  private readonly index: UndoIndex;
  private queue: Promise<unknown> = Promise.resolve();
  /** Set while a revert runs: points after it are being dropped and may not be read. */
  private revertTarget: number | undefined;
  /** Pinned points (holder → point id): see pin(). */
  private readonly pins_ = new Map<string, string>();
  /** Mutations completed so far, and whether one runs now (a staging's validity). */
  private mutations = 0;
  private stagedApplies = 0;
  private busy = false;
  /** Step 1 of the next segment, built while it arrives (stageUndo). */
  private staging: { stager: UndoStager; mutations: number } | undefined;
  /** The stager's batch memory, kept for the next one (it is used by one at a time). */
  private stagingBuffer: Buffer | undefined;

  constructor(
    private readonly opts: CompiledOptions,
    private readonly ctx: ReplayContext,
    private readonly db: RecoveryDb,
    private readonly reader: OldContentsReader,
    private readonly writer: ExtentWriter,
    recovered: {
      lastApplied: number;
      points: StoredPoint[];
      index: UndoIndex;
      report: OpenReport;
      resync: StoreResync;
    },
    private readonly log: CompiledOptions['log'],
    pinned: Readonly<Record<string, string>> = {},
  ) {
    this.resync = recovered.resync;
    this.lastApplied = recovered.lastApplied;
    this.points_ = recovered.points;
    this.index = recovered.index;
    this.openReport = recovered.report;
    for (const p of this.points_) this.byId.set(p.record.id, p);
    for (const [holder, id] of Object.entries(pinned)) {
      if (this.byId.has(id)) this.pins_.set(holder, id);
      else log.warn({ holder, pointId: id }, 'a pinned point is no longer retained');
    }
  }

  get vmId(): string {
    return this.opts.vmId;
  }

  /**
   * Starts building the undo file of segment `seq` ahead of its apply (undo-stager.ts), for
   * the extents the caller will `add` as they arrive; undefined when it cannot help: not the
   * next segment, a resync or another change under way, or the store not ready. A staging is
   * used by `apply` only if no mutation ran since it began, else it is dropped and step 1 runs
   * as usual. Starting another, applying another seq or closing drops it too.
   */
  stageUndo(seq: number, opts: { readonly live?: boolean } = {}): UndoStager | undefined {
    this.dropStaging();
    if (this.state !== 'ready' || this.busy || this.resync.running()) return undefined;
    if (seq !== this.lastApplied + 1) return undefined;
    this.stagingBuffer ??= Buffer.allocUnsafe(this.opts.batchBytes);
    const stager = new UndoStager({
      dir: this.ctx.undoDir,
      seq,
      diskCount: this.opts.disks.length,
      reader: this.reader,
      buffer: this.stagingBuffer,
      ...(opts.live ? { syncEveryBytes: LIVE_SYNC_BYTES } : {}),
    });
    this.staging = { stager, mutations: this.mutations };
    return stager;
  }

  private dropStaging(): void {
    this.staging?.stager.abort();
    this.staging = undefined;
  }

  /** The staging made for `seq`, if it is still true to the disks; any other is dropped. */
  private takeStaging(seq: number): UndoStager | undefined {
    const s = this.staging;
    this.staging = undefined;
    if (s && s.stager.seq === seq && !s.stager.failed && s.mutations === this.mutations) {
      return s.stager;
    }
    s?.stager.abort();
    return undefined;
  }

  apply(seg: IncomingSegment): Promise<ApplyResult> {
    return this.exclusive(async () => {
      if (this.resync.running()) {
        throw new SecondsiteError('SS_CONFLICT', `a resync is running: segment ${seg.seq} waits`, {
          seq: seg.seq,
          vmId: this.vmId,
        });
      }
      if (seg.seq <= this.lastApplied) return 'duplicate';
      if (seg.seq !== this.lastApplied + 1) {
        throw new SecondsiteError(
          'SS_SEGMENT_OUT_OF_ORDER',
          `segment ${seg.seq} arrived but the replica expects ${this.lastApplied + 1}`,
          { seq: seg.seq, expected: this.lastApplied + 1, vmId: this.vmId },
        );
      }
      checkSegment(
        seg,
        this.opts.disks.map((d) => d.size),
      );
      if (this.byId.has(seg.point.id)) {
        throw new SecondsiteError('SS_PROTOCOL', `recovery point id ${seg.point.id} is reused`, {
          seq: seg.seq,
          pointId: seg.point.id,
        });
      }
      this.state = 'applying';
      try {
        await this.applySteps(seg);
      } finally {
        if (this.state === 'applying') this.state = 'ready';
      }
      return 'applied';
    });
  }

  /** Steps 1–5 of the apply protocol (see the top of this file). */
  private async applySteps(seg: IncomingSegment): Promise<void> {
    let file: UndoFile | undefined;
    const t0 = performance.now();
    let tUndo = t0;
    let tWrite = t0;
    let staged = this.takeStaging(seg.seq);
    if (staged && seg.extents.length === 0) {
      staged.abort(); // nothing to undo: no file at all, as without staging
      staged = undefined;
    }
    if (seg.extents.length > 0) {
      try {
        file = staged
          ? await staged.finish()
          : await writeUndoFile({
              dir: this.ctx.undoDir,
              seq: seg.seq,
              extents: seg.extents,
              diskCount: this.opts.disks.length,
              reader: this.reader,
              buffer: this.ctx.buffer,
            });
      } catch (e) {
        removeFile(undoPath(this.ctx.undoDir, seg.seq));
        throw ioError(`writing undo data of segment ${seg.seq}`, e);
      }
      tUndo = performance.now();
      if (staged) this.stagedApplies++;
      this.index.add(file);
      await this.failOnError(() => this.db.putIntent({ op: 'apply', seq: seg.seq }));
      await this.failOnError(() => this.writer.writeDurably(seg.extents));
      tWrite = performance.now();
    }
    const stored: StoredPoint = { record: { ...seg.point }, undoBytes: file?.bytes ?? 0 };
    await this.failOnError(() => this.db.commitPoint(stored));
    const ms = (a: number, b: number): number => Math.round(b - a);
    this.log.debug(
      {
        seq: seg.seq,
        undoBytes: file?.bytes ?? 0,
        undoStaged: staged !== undefined,
        undoMs: ms(t0, tUndo),
        writeMs: ms(tUndo, tWrite),
        commitMs: ms(tWrite, performance.now()),
      },
      'segment applied',
    );
    this.lastApplied = seg.seq;
    this.points_.push(stored);
    this.byId.set(stored.record.id, stored);
    if (file && !undoNeeded(seg.seq, this.points_[0]?.record.segment, this.lastApplied)) {
      this.index.remove(seg.seq);
      removeFile(file.path);
    }
    await this.dropResyncIfUnneeded();
  }

  points(): RecoveryPointRecord[] {
    return this.points_.map((p) => p.record);
  }

  latest(): RecoveryPointRecord | undefined {
    return this.points_.at(-1)?.record;
  }

  stats(): ReplicaStats {
    return {
      vmId: this.vmId,
      count: this.points_.length,
      oldest: this.points_[0]?.record,
      newest: this.points_.at(-1)?.record,
      undoBytes: this.index.totalBytes(),
      lastApplied: this.lastApplied,
      stagedApplies: this.stagedApplies,
    };
  }

  read(disk: number, offset: number, length: number, pointId: string): Buffer {
    this.assertUsable();
    const raw = this.opts.disks[disk];
    if (!raw) throw badInput('disk', `no disk ${disk}`, { disks: this.opts.disks.length });
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0) {
      throw badInput('range', `bad range ${offset}+${length}`);
    }
    if (length < 0 || offset + length > raw.size) {
      throw badInput('range', `${offset}+${length} is outside disk ${disk} (${raw.size} bytes)`);
    }
    const point = this.point(pointId);
    const seq = point.record.segment;
    if (this.revertTarget !== undefined && seq > this.revertTarget) {
      throw new SecondsiteError('SS_CONFLICT', `point ${pointId} is being reverted away`, {
        pointId,
      });
    }
    return readAtPoint(this.index, raw, disk, seq, offset, length, this.resync.readLayer());
  }

  prune(now = this.opts.clock.now()): Promise<RecoveryPointRecord[]> {
    return this.exclusive(async () => {
      const candidates = this.points_.map((p) => ({ ...p.record, seq: p.record.segment }));
      const drop = new Set(pointsToPrune(candidates, now, this.opts.rules));
      for (const id of this.pins_.values()) drop.delete(this.byId.get(id)?.record.segment ?? -1);
      if (drop.size === 0) return [];
      const dropped = this.points_.filter((p) => drop.has(p.record.segment));
      await this.db.dropPoints([...drop]);
      this.forget(dropped);
      const files = dropUnneeded(this.ctx.undoDir, this.index, this.points_, this.lastApplied);
      await this.dropResyncIfUnneeded();
      this.log.info({ points: dropped.length, undoFiles: files }, 'pruned recovery points');
      return dropped.map((p) => p.record);
    });
  }

  revertTo(pointId: string): Promise<void> {
    return this.exclusive(() => this.revertUnlocked(pointId));
  }

  private async revertUnlocked(pointId: string): Promise<void> {
    const target = this.point(pointId).record.segment;
    this.refusePinned('revert', (seq) => seq > target);
    const layer = this.resync.revertLayer();
    if (target === this.lastApplied && !this.resync.fuzzy(this.lastApplied)) return;
    // Verified before the intent is recorded: corrupt undo data refuses the revert and leaves
    // the store as it was, instead of an intent that no reopen could complete.
    verifyAll(this.ctx, revertFiles(this.live(), target));
    this.state = 'reverting';
    this.revertTarget = target;
    await this.failOnError(async () => {
      await this.db.putIntent({ op: 'revert', target });
      const done = await completeRevert(this.ctx, this.db, this.live(), target, this.log, {
        verified: true,
        ...(layer ? { layer } : {}),
      });
      this.forget(this.points_.filter((p) => p.record.segment > target));
      this.lastApplied = done.lastApplied;
    });
    this.revertTarget = undefined;
    this.state = 'ready';
  }

  commit(pointId?: string): Promise<void> {
    return this.exclusive(async () => {
      // Mid-resync the disks are at no point: committing means going back to the last good one.
      const fuzzy = this.resync.fuzzy(this.lastApplied) ? this.latest()?.id : undefined;
      const target = pointId ?? fuzzy;
      const keep = target === undefined ? this.lastApplied : this.point(target).record.segment;
      this.refusePinned('commit', (seq) => seq !== keep);
      if (target !== undefined) await this.revertUnlocked(target);
      const others = this.points_.slice(0, -1);
      await this.db.dropPoints(others.map((p) => p.record.segment));
      this.forget(others);
      dropUnneeded(this.ctx.undoDir, this.index, this.points_, this.lastApplied);
      await this.dropResyncIfUnneeded();
      this.log.info({ point: this.latest()?.id, dropped: others.length }, 'failover committed');
    });
  }

  rebase(lastApplied: number): Promise<void> {
    return this.exclusive(async () => {
      if (!Number.isSafeInteger(lastApplied) || lastApplied < 0) {
        throw badInput('lastApplied', `must be a whole number >= 0, not ${lastApplied}`);
      }
      this.refusePinned('rebase', () => true);
      await this.rebaseUnlocked(lastApplied);
      this.log.info({ lastApplied }, 'replica store rebased');
    });
  }

  /** Drops every point, all undo data and any resync; segment `lastApplied + 1` comes next. */
  private async rebaseUnlocked(lastApplied: number): Promise<void> {
    const seqs = this.points_.map((p) => p.record.segment);
    await this.db.resetTo(lastApplied, seqs, { dropResync: this.resync.record !== undefined });
    this.resync.forget();
    this.forget(this.points_);
    this.lastApplied = lastApplied;
    dropUnneeded(this.ctx.undoDir, this.index, this.points_, this.lastApplied);
  }

  resyncState(): ResyncRecord | undefined {
    return this.resync.record;
  }

  resyncStats(): { undoBytes: number; coveredBytes: number } {
    return this.resync.stats();
  }

  beginResync(id: string): Promise<ResyncRecord> {
    return this.exclusive(async () => {
      this.refusePinned('resync', () => true);
      const seqs = this.points_.map((p) => p.record.segment);
      const { record, dropped } = await this.resync.begin(this.db, id, this.lastApplied, seqs);
      if (dropped.length > 0) {
        this.forget(this.points_.filter((p) => dropped.includes(p.record.segment)));
        dropUnneeded(this.ctx.undoDir, this.index, this.points_, this.lastApplied);
        this.log.warn({ dropped: dropped.length }, 'a new resync superseded an older one');
      }
      this.log.info({ resync: record }, 'resync begun');
      return record;
    });
  }

  applyResyncChunks(id: string, extents: readonly Extent[], cursor: ResyncCursor): Promise<void> {
    return this.exclusive(async () => {
      this.state = 'applying';
      try {
        await this.failOnError(() => this.resync.applyChunks(this.db, id, extents, cursor));
      } finally {
        if (this.state === 'applying') this.state = 'ready';
      }
    });
  }

  finishResync(id: string, baseSeq: number): Promise<'kept' | 'rebase'> {
    return this.exclusive(async () => {
      if (!Number.isSafeInteger(baseSeq) || baseSeq < 0) {
        throw badInput('baseSeq', `must be a whole number >= 0, not ${baseSeq}`);
      }
      const outcome = await this.resync.finish(this.db, id, baseSeq);
      if (outcome === 'rebase') await this.rebaseUnlocked(baseSeq);
      else this.lastApplied = baseSeq;
      this.log.info({ id, baseSeq, outcome }, 'resync finished');
      return outcome;
    });
  }

  pin(holder: string, pointId: string): Promise<void> {
    return this.exclusive(async () => {
      this.point(pointId);
      this.pins_.set(holder, pointId);
      this.log.info({ holder, pointId }, 'recovery point pinned');
    });
  }

  unpin(holder: string): void {
    if (this.pins_.delete(holder)) this.log.info({ holder }, 'recovery point unpinned');
  }

  pins(): ReadonlyMap<string, string> {
    return this.pins_;
  }

  /** SS_CONFLICT when `what` would drop a pinned point (one whose segment `drops`). */
  private refusePinned(what: string, drops: (seq: number) => boolean): void {
    for (const [holder, id] of this.pins_) {
      const seq = this.byId.get(id)?.record.segment;
      if (seq !== undefined && drops(seq)) {
        throw new SecondsiteError(
          'SS_CONFLICT',
          `recovery point ${id} is pinned by ${holder}: no ${what} until it is released`,
          { vmId: this.vmId, pointId: id, holder },
        );
      }
    }
  }

  private async dropResyncIfUnneeded(): Promise<void> {
    const oldest = this.points_[0]?.record.segment;
    if (await this.resync.dropIfUnneeded(this.db, oldest, this.lastApplied)) {
      this.log.info('resync undo log no longer needed: deleted');
    }
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    await this.queue.catch(() => undefined);
    this.dropStaging();
    this.state = 'closed';
    this.resync.close();
    this.index.close();
    this.reader.close();
    this.writer.close();
    await this.db.close();
  }

  private point(pointId: string): StoredPoint {
    const p = this.byId.get(pointId);
    if (!p) {
      throw new SecondsiteError('SS_NOT_FOUND', `no recovery point ${pointId}`, {
        pointId,
        vmId: this.vmId,
      });
    }
    return p;
  }

  private live(): LiveState {
    return { lastApplied: this.lastApplied, points: this.points_, index: this.index };
  }

  private forget(dropped: readonly StoredPoint[]): void {
    const gone = new Set(dropped.map((p) => p.record.segment));
    for (const p of dropped) this.byId.delete(p.record.id);
    this.points_ = this.points_.filter((p) => !gone.has(p.record.segment));
  }

  private assertUsable(): void {
    if (this.state === 'failed' || this.state === 'closed') {
      throw new SecondsiteError(
        'SS_CONFLICT',
        this.state === 'failed'
          ? 'the replica store failed mid-change; reopen it to roll back'
          : 'the replica store is closed',
        { vmId: this.vmId, state: this.state },
      );
    }
  }

  /** Runs mutations one at a time, in call order. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      this.assertUsable();
      this.busy = true;
      try {
        return await fn();
      } finally {
        this.busy = false;
        this.mutations++;
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** A failure once the disks may be changing leaves the store failed until reopened. */
  private async failOnError(fn: () => unknown): Promise<void> {
    try {
      await fn();
    } catch (e) {
      this.state = 'failed';
      this.log.error({ err: e }, 'replica store failed mid-change; reopen to recover');
      throw e instanceof SecondsiteError ? e : ioError('changing the replica', e);
    }
  }
}

function ioError(what: string, cause: unknown): SecondsiteError {
  return new SecondsiteError('SS_IO', `${what}: ${(cause as Error).message}`, {}, { cause });
}
