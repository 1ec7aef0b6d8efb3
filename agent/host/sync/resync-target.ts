/**
 * Resync, replica side: hashes the replica's chunks for the source's RangeHashes, answers
 * which differ, and hands the differing chunks to the recovery store, which saves the bytes
 * they replace first (store-resync.ts) so every retained point stays readable until the
 * resync completes. Implements ResyncPeer directly: the transport calls these per frame, and
 * tests call them through an in-process loopback.
 */
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { ReplicaStore } from '../recovery/types.ts';
import type { RawDisk } from '../vm/raw-disk.ts';
import { validChunkBytes, type GridCursor } from './chunk-grid.ts';
import { hashRange, type HashAlgorithm, type ReadFn } from './chunk-hash.ts';
import { diffHashes } from './hash-diff.ts';
import type { Extent, ResyncPeer } from './types.ts';

/** replication.proto RangeHashes: at most 16384 chunks per range. */
const MAX_CHUNKS_PER_RANGE = 16384;

export interface ResyncTargetOptions {
  readonly store: Pick<ReplicaStore, 'beginResync' | 'applyResyncChunks' | 'finishResync'>;
  /** The replica disks (the store's): hashed as they are now. */
  readonly disks: readonly RawDisk[];
  readonly log: Logger;
}

export class ResyncTarget implements ResyncPeer {
  private current: { id: string; algorithm: HashAlgorithm; chunkBytes: number } | undefined;
  private buffer = Buffer.alloc(0);
  /** Bytes of replica hashed by this engine (tests check the dirty narrowing with it). */
  bytesHashed = 0;
  private readonly read: ReadFn;
  /**
   * Calls run one at a time in call order, as the server runs frames: the source keeps
   * several diffs in flight, and they share `buffer`.
   */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: ResyncTargetOptions) {
    this.read = async (disk, offset, length, into) => o.disks[disk]!.readSync(offset, length, into);
  }

  begin(start: { id: string; algorithm: HashAlgorithm; chunkBytes: number }) {
    return this.serial(() => this.doBegin(start));
  }

  diff(req: { disk: number; offset: number; length: number; hashes: readonly Uint8Array[] }) {
    return this.serial(() => this.doDiff(req));
  }

  apply(extents: readonly Extent[], cursor: GridCursor): Promise<void> {
    return this.serial(() => this.o.store.applyResyncChunks(this.expect().id, extents, cursor));
  }

  finish(baseSeq: number): Promise<void> {
    return this.serial(() => this.doFinish(baseSeq));
  }

  private serial<T>(step: () => Promise<T>): Promise<T> {
    const run = this.queue.then(step);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async doBegin(start: { id: string; algorithm: HashAlgorithm; chunkBytes: number }) {
    if (!validChunkBytes(start.chunkBytes)) {
      throw new SecondsiteError('SS_PROTOCOL', `resync chunk size ${start.chunkBytes} refused`, {});
    }
    const record = await this.o.store.beginResync(start.id);
    this.current = { ...start };
    this.o.log.info({ resync: start.id, cursor: record.cursor }, 'resync: replica side begins');
    return { cursor: record.cursor as GridCursor };
  }

  private async doDiff(req: {
    disk: number;
    offset: number;
    length: number;
    hashes: readonly Uint8Array[];
  }) {
    const c = this.expect();
    const disk = this.o.disks[req.disk];
    const chunks = Math.ceil(req.length / c.chunkBytes);
    const ok =
      disk !== undefined &&
      req.offset % c.chunkBytes === 0 &&
      req.length > 0 &&
      req.offset + req.length <= disk.size &&
      chunks === req.hashes.length &&
      chunks <= MAX_CHUNKS_PER_RANGE;
    if (!ok) {
      throw new SecondsiteError('SS_PROTOCOL', 'resync range hashes malformed', {
        disk: req.disk,
        offset: req.offset,
        length: req.length,
        hashes: req.hashes.length,
      });
    }
    const mine: Buffer[] = [];
    const step = c.chunkBytes * 16;
    if (this.buffer.length < step) this.buffer = Buffer.allocUnsafe(step);
    for (let at = 0; at < req.length; at += step) {
      const piece = {
        disk: req.disk,
        offset: req.offset + at,
        length: Math.min(step, req.length - at),
      };
      const hashed = await hashRange(this.read, piece, c.chunkBytes, c.algorithm, this.buffer);
      mine.push(...hashed.hashes);
    }
    this.bytesHashed += req.length;
    return diffHashes(req.hashes, mine);
  }

  private async doFinish(baseSeq: number): Promise<void> {
    const outcome = await this.o.store.finishResync(this.expect().id, baseSeq);
    this.o.log.info({ baseSeq, outcome }, 'resync: replica waits for the segment after the base');
    this.current = undefined;
  }

  private expect(): { id: string; algorithm: HashAlgorithm; chunkBytes: number } {
    if (!this.current)
      throw new SecondsiteError('SS_PROTOCOL', 'resync frame before ResyncStart', {});
    return this.current;
  }
}
