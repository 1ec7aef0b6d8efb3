/**
 * The replica store's side of a resync (R18): differing chunks are written with undo data so
 * that every retained point stays readable and revertible until the resync is done.
 *
 * Protocol (each step durable before the next; the record is the `resync` key, recovery-db.ts):
 *   1. begin: record { id, after: lastApplied, state: running, cursor: start } (+ empty log).
 *      While running, segments are refused: the disks are at no point.
 *   2. per batch of differing chunks: the chunks' current bytes are appended to the undo log
 *      and fdatasynced (resync-layer.ts), the chunks are written and fsynced, then the record's
 *      cursor moves past the batch (sync write). A kill -9 anywhere resumes from the cursor;
 *      chunks written past it are compared again, and their first undo record still wins.
 *   3. finish(base): one batch sets state finished and lastApplied = base (the source's base
 *      point, whose segment is never shipped: its writes are in the chunks). The replica is
 *      exact again once segment base + 1 is applied, and only then advertises a new point.
 *   4. the log is deleted once no retained point predates the resync (prune, commit), or
 *      written back by a revert to such a point (open-recovery.ts), or dropped by rebase.
 *
 * A revert to a point up to `after` (failover while the resync runs) writes back, newest
 * first: segments applied after the resync, the log, then segments after the point.
 */
import { existsSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Extent } from '../journal/types.ts';
import type { RawDisk } from '../vm/raw-disk.ts';
import { writeExtents } from './extent-writes.ts';
import type { RevertLayer } from './open-recovery.ts';
import type { ReadLayer } from './point-read.ts';
import type { RecoveryDb, ResyncCursor, ResyncRecord } from './recovery-db.ts';
import { ResyncLayer } from './resync-layer.ts';
import { segmentProblem } from './segment-check.ts';

export type { ResyncCursor, ResyncRecord } from './recovery-db.ts';

const START: ResyncCursor = Object.freeze({ disk: 0, offset: 0 });

export class StoreResync {
  private constructor(
    private readonly dir: string,
    private readonly disks: readonly RawDisk[],
    private readonly buffer: Buffer,
    private rec: ResyncRecord | undefined,
    private layer: ResyncLayer | undefined,
  ) {}

  static async load(
    db: RecoveryDb,
    dir: string,
    disks: readonly RawDisk[],
    buffer: Buffer,
  ): Promise<StoreResync> {
    const rec = await db.getResync();
    const logDir = dirname(ResyncLayer.path(dir));
    if (!rec?.undo && existsSync(logDir)) rmSync(logDir, { recursive: true, force: true });
    const layer = rec?.undo ? ResyncLayer.open(dir, disks.length, buffer) : undefined;
    return new StoreResync(dir, disks, buffer, rec, layer);
  }

  get record(): ResyncRecord | undefined {
    return this.rec;
  }

  /** The replica disks are at no recovery point: mid-resync, or finished but base + 1 not applied. */
  fuzzy(lastApplied: number): boolean {
    if (!this.rec) return false;
    return this.rec.state === 'running' || lastApplied === this.rec.base;
  }

  running(): boolean {
    return this.rec?.state === 'running';
  }

  readLayer(): ReadLayer | undefined {
    const { rec, layer } = this;
    if (!rec || !layer) return undefined;
    return {
      after: rec.after,
      touching: (d, s, e) => layer.touching(d, s, e),
      readPiece: (d, r, f, into) => layer.readPiece(d, r, f, into),
    };
  }

  revertLayer(): RevertLayer | undefined {
    const { rec, layer } = this;
    if (!rec || !layer) return undefined;
    return {
      after: rec.after,
      writeBack: () => layer.writeBack(this.disks, this.buffer),
      remove: () => this.forget(),
    };
  }

  /**
   * Step 1, or resuming: the same id resumes at the cursor; another id keeps the undo log (its
   * first records still hold the last good point) and compares from the start. A finished
   * resync whose log is still needed by old points is superseded: those points are returned
   * for the caller to drop (two logs are not supported).
   */
  async begin(
    db: RecoveryDb,
    id: string,
    lastApplied: number,
    pointSeqs: readonly number[],
  ): Promise<{ record: ResyncRecord; dropped: number[] }> {
    let dropped: number[] = [];
    const rec = this.rec;
    if (rec?.state === 'running' && rec.id === id) return { record: rec, dropped };
    if (rec && this.fuzzy(lastApplied)) {
      const next: ResyncRecord = {
        id,
        after: rec.after,
        state: 'running',
        cursor: START,
        undo: rec.undo,
      };
      await db.putResync(next);
      this.rec = next;
      return { record: next, dropped };
    }
    if (rec) {
      dropped = pointSeqs.filter((s) => s <= rec.after);
      await db.dropResync(dropped);
      this.forget();
    }
    const undo = pointSeqs.length - dropped.length > 0;
    if (undo) this.layer = ResyncLayer.open(this.dir, this.disks.length, this.buffer);
    const next: ResyncRecord = { id, after: lastApplied, state: 'running', cursor: START, undo };
    await db.putResync(next);
    this.rec = next;
    return { record: next, dropped };
  }

  /** Step 2 for one batch. `extents` sorted by (disk, offset); `data === null` writes zeros. */
  async applyChunks(
    db: RecoveryDb,
    id: string,
    extents: readonly Extent[],
    cursor: ResyncCursor,
  ): Promise<void> {
    const rec = this.expectRunning(id);
    const problem = segmentProblem(
      { seq: 1, point: { id: 'resync', segment: 1, time: 0, type: 'crash-consistent' }, extents },
      this.disks.map((d) => d.size),
    );
    if (problem !== undefined) {
      throw new SecondsiteError('SS_PROTOCOL', `resync chunks are malformed: ${problem}`, { id });
    }
    if (this.layer) this.layer.saveOldContents(extents, this.disks, this.buffer);
    writeExtents(this.disks, extents);
    const next = { ...rec, cursor: { disk: cursor.disk, offset: cursor.offset } };
    await db.putResync(next);
    this.rec = next;
  }

  /**
   * Step 3. Returns 'rebase' when the old points cannot be kept (none were, or `base` is not
   * after them: another journal's numbering): the caller then drops every point and the log.
   */
  async finish(db: RecoveryDb, id: string, base: number): Promise<'kept' | 'rebase'> {
    const rec = this.expectRunning(id);
    if (!rec.undo || base <= rec.after) return 'rebase';
    const next = { ...rec, state: 'finished' as const, base };
    await db.finishResync(next);
    this.rec = next;
    return 'kept';
  }

  /** Step 4: the log goes once the replica is exact again and no point predates the resync. */
  async dropIfUnneeded(db: RecoveryDb, oldestPoint: number | undefined, lastApplied: number) {
    const rec = this.rec;
    if (!rec || rec.state !== 'finished' || this.fuzzy(lastApplied)) return false;
    if (oldestPoint !== undefined && oldestPoint <= rec.after) return false;
    await db.dropResync();
    this.forget();
    return true;
  }

  /** Forgets the resync (its record is already gone from the db or going in the same batch). */
  forget(): void {
    this.layer?.remove();
    this.layer = undefined;
    this.rec = undefined;
  }

  close(): void {
    this.layer?.close();
  }

  stats(): { undoBytes: number; coveredBytes: number } {
    return { undoBytes: this.layer?.bytes ?? 0, coveredBytes: this.layer?.coveredBytes() ?? 0 };
  }

  private expectRunning(id: string): ResyncRecord {
    const rec = this.rec;
    if (rec?.state !== 'running' || rec.id !== id) {
      throw new SecondsiteError('SS_CONFLICT', `no running resync ${id} on this replica`, {
        id,
        running: rec?.state === 'running' ? rec.id : undefined,
      });
    }
    return rec;
  }
}
