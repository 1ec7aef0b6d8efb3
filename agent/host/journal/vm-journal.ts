/**
 * The per-VM write journal (Hyper-V Replica's log). Each change is appended to the active
 * segment synchronously and the overlay (overlay-map-pure.ts) notes where the range's newest
 * bytes now live; reads merge it over the raw disk. The raw disks catch up at each cut (the
 * sealed segment's surviving pieces are copied onto them in the background) and on close.
 * Writing the disk at once as well doubles the bytes each write dirties and each FLUSH waits
 * for: measured here, a journaled NBD export then ran at half the speed of a raw one.
 * - Operations are journaled in call order and a cut (also synchronous) falls between two of
 *   them: a recovery point is exact across all disks without a lock.
 * - FLUSH / FUA fdatasync the unsealed segments only: recovery replays every unsealed segment
 *   onto the disks (journal-recovery.ts), so a durable record is a durable write.
 * - Read the disks through `disk(i)`: the raw files lag by up to one cycle while open.
 *
 * Lifecycle (`state`): journaling ──(unshipped bytes would pass capBytes)──▶ resync-required
 * ──(resetAfterResync)──▶ journaling. A cut appends SEAL and opens segment seq+1 synchronously;
 * then, in seq order and off the write path: fdatasync the segment, apply it, fdatasync the
 * disks, rename it `.seg`, resolve.
 */
import { randomUUID } from 'node:crypto';
import { renameSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { Clock } from '../../../common/time/clock.ts';
import type { RawDisk } from '../vm/raw-disk.ts';
import { DirtyBitmap } from './dirty-bitmap.ts';
import { fsyncDir, fsyncDirAsync, segmentPath } from './journal-dir.ts';
import { recoverJournal } from './journal-recovery.ts';
import { enterResyncRequired, touchedRanges, type TouchedRange } from './journal-resync.ts';
import { writeStateFile } from './journal-state.ts';
import { JournaledDisk, type JournalWritePath } from './journaled-disk.ts';
import { OverlayMap } from './overlay-map-pure.ts';
import { applyPiecesSliced, applyPiecesSync, copyBuffer, readThrough } from './overlay-io.ts';
import { FLAG_FUA, RecordType } from './segment-format.ts';
import { SegmentWriter } from './segment-writer.ts';
import type {
  JournalState,
  LiveSegment,
  RecoveryPointRecord,
  RecoveryPointType,
  SealedSegment,
  VmJournal,
} from './types.ts';

/**
 * The active segment is fdatasynced in the background after this many bytes (segment-writer.ts
 * `trickle`): a cut after a busy cycle then waits for the last few MiB, not the whole cycle
 * (measured at 100 MB/s of churn: the seal's fdatasync of a 2.8 GB segment took 1.1 s).
 */
const TRICKLE_BYTES = 32 * 1024 * 1024;

export interface OpenVmJournalOptions {
  /** The VM's journal folder; created if missing. */
  readonly dir: string;
  readonly vmId: string;
  /** The VM's raw disks, in disk-index order. The journal owns them from now on (close). */
  readonly disks: RawDisk[];
  /**
   * Unshipped journal bytes beyond which journaling stops and the VM needs a resync.
   * @default half the sum of the disk sizes (Hyper-V Replica's rule)
   */
  readonly capBytes?: number | undefined;
  readonly clock: Clock;
  readonly log: Logger;
  /**
   * Called when a cut's segment became shippable (its SEAL record is on stable storage),
   * before the cut resolves: the sender need not wait for the raw disks to catch up.
   */
  readonly onShippable?: () => void;
}

export async function openVmJournal(
  opts: OpenVmJournalOptions,
): Promise<VmJournal & VmJournalExtras> {
  const capBytes = opts.capBytes ?? Math.floor(opts.disks.reduce((n, d) => n + d.size, 0) / 2);
  if (!(capBytes > 0))
    throw new SecondsiteError('SS_BAD_INPUT', 'capBytes: must be positive', { capBytes });
  const recovered = recoverJournal(opts);
  return new VmJournalImpl(opts, capBytes, recovered);
}

/** Beyond the VmJournal interface: for the replication helper and tests. */
export interface VmJournalExtras {
  /**
   * Journal again from a fresh segment, ending bitmap tracking. Resolves with the dirty ranges
   * at the instant of the switch (taken in the same synchronous step), so a write that lands
   * while the reset waits for a seal is in the result or in the new segment, never in neither.
   */
  resetAfterResync(): Promise<Map<number, Array<[number, number]>>>;
}

class VmJournalImpl implements VmJournal, VmJournalExtras, JournalWritePath {
  private current: JournalState;
  private active: SegmentWriter | undefined;
  private readonly sealing = new Set<SegmentWriter>();
  private readonly sealed: SealedSegment[];
  /**
   * Segments whose SEAL record is durable but whose seal is still finishing (pieces going to
   * the raw disks, then the rename to `.seg`). They may be shipped already: recovery finishes
   * such a seal with the same point (journal-recovery.ts), so the replica never holds a point
   * the journal could lose. Keyed by seq; `openPath` is the file's name until the rename.
   */
  private readonly durable = new Map<number, SealedSegment>();
  /** The newest seq the peer acknowledged (markShipped): a seal finishing later deletes it. */
  private shippedThrough = 0;
  private sealedBytes: number;
  private bitmap: DirtyBitmap | undefined;
  private nextSeq: number;
  private readonly bootId: string | undefined;
  private sealChain: Promise<void> = Promise.resolve();
  private readonly views = new Map<number, JournaledDisk>();
  private readonly overlay = new OverlayMap();
  /** The active and the sealing segments: the ones the overlay may point into. */
  private readonly segs = new Map<number, SegmentWriter>();
  private copyBuf: Buffer | undefined;
  private closed = false;

  constructor(
    private readonly o: OpenVmJournalOptions,
    private readonly capBytes: number,
    r: ReturnType<typeof recoverJournal>,
  ) {
    this.current = r.state;
    this.active = r.active;
    this.sealed = r.sealed;
    this.sealedBytes = r.sealed.reduce((n, s) => n + s.bytes, 0);
    this.bitmap = r.bitmap;
    this.nextSeq = r.nextSeq;
    this.bootId = r.bootId;
    if (r.active) this.segs.set(r.active.seq, r.active);
  }

  get state(): JournalState {
    return this.current;
  }

  disk(index: number): JournaledDisk {
    const raw = this.o.disks[index];
    if (!raw) throw new SecondsiteError('SS_NOT_FOUND', `no disk ${index}`, { index });
    let view = this.views.get(index);
    if (!view || view.isClosed) {
      view = new JournaledDisk(this, index, raw.size);
      this.views.set(index, view);
    }
    return view;
  }

  // ---- write path (JournalWritePath): every call completes synchronously ----

  readSync(disk: number, offset: number, length: number, into?: Buffer): Buffer {
    this.assertOpen();
    const raw = this.raw(disk);
    if (this.overlay.size === 0) return raw.readSync(offset, length, into);
    return readThrough(this.overlay, this.segs, raw, disk, offset, length, into);
  }

  writeSync(disk: number, offset: number, data: Buffer, fua: boolean): void {
    const raw = this.raw(disk);
    if (this.journalingFor(disk, offset, data.length, data.length)) {
      const seg = this.activeWriter();
      const pos = seg.append(RecordType.write, disk, offset, data.length, data, fua ? FLAG_FUA : 0);
      this.overlay.set(disk, offset, data.length, { kind: 'data', seg: seg.seq, pos });
      seg.trickle(TRICKLE_BYTES);
    } else {
      this.bitmap?.markSync(disk, offset, data.length);
      raw.writeSync(offset, data);
    }
    if (fua) this.syncDurable(raw);
  }

  zeroSync(
    disk: number,
    kind: 'trim' | 'zero',
    offset: number,
    length: number,
    fua: boolean,
  ): void {
    const raw = this.raw(disk);
    if (this.journalingFor(disk, offset, length, 0)) {
      const seg = this.activeWriter();
      const type = kind === 'trim' ? RecordType.trim : RecordType.zero;
      seg.append(type, disk, offset, length, null, fua ? FLAG_FUA : 0);
      this.overlay.set(disk, offset, length, { kind: 'zero', seg: seg.seq });
    } else {
      this.bitmap?.markSync(disk, offset, length);
      raw.zeroSync(offset, length);
    }
    if (fua) this.syncDurable(raw);
  }

  flushSync(disk: number): void {
    this.assertOpen();
    this.syncDurable(this.raw(disk));
  }

  /** Whether this operation goes to the journal; first gives the journal up if it would overflow. */
  private journalingFor(disk: number, offset: number, length: number, payload: number): boolean {
    this.assertOpen();
    if (this.current !== 'journaling') return false;
    if (this.unshippedBytes() + SegmentWriter.recordBytes(payload) > this.capBytes) {
      this.overflow({ disk, offset, length });
    }
    return this.current === 'journaling';
  }

  /**
   * Makes every acknowledged operation durable. While journaling, fdatasync of the open
   * segments is enough: recovery replays every unsealed segment onto the disks, so a record
   * on stable storage is as good as its disk write (write-ahead logging). The disks are
   * fdatasynced at each cut instead, before their segment is sealed. This halves the bytes a
   * FLUSH waits for (only the journal's copy, not the disk's as well).
   */
  private syncDurable(raw: RawDisk): void {
    if (this.current !== 'journaling') {
      raw.syncSync();
      return;
    }
    this.active?.syncSync();
    for (const s of this.sealing) if (!s.dropped) s.syncSync();
  }

  // ---- cuts and shipping ----

  async cut(opts: {
    type: RecoveryPointType;
    freezeFailed?: string;
  }): Promise<RecoveryPointRecord> {
    this.assertOpen();
    if (this.current !== 'journaling') {
      const vm = this.o.vmId;
      throw new SecondsiteError('SS_RESYNC_REQUIRED', 'journal overflowed: no point', { vm });
    }
    const old = this.activeWriter();
    const point: RecoveryPointRecord = {
      id: randomUUID(),
      time: this.o.clock.now(),
      type: opts.type,
      segment: old.seq,
      ...(opts.freezeFailed ? { freezeFailed: opts.freezeFailed } : {}),
    };
    // The instant of the cut: no operation can run between these two lines.
    try {
      old.appendSeal(point);
      this.active = this.createSegment(old.seq + 1);
      this.segs.set(this.active.seq, this.active);
    } catch (cause) {
      // Never append after a SEAL: writes fail (EIO) until the journal is reopened, and
      // recovery then finishes or discards this cut.
      this.active = undefined;
      throw new SecondsiteError('SS_IO', 'journal cut failed', { vm: this.o.vmId }, { cause });
    }
    this.sealing.add(old);
    const done = this.sealChain.then(() => this.finishSeal(old, point));
    this.sealChain = done.then(
      () => undefined,
      () => undefined,
    );
    await done;
    return point;
  }

  /** Seal step 2, in seq order: segment durable, its pieces on the disks, disks durable, rename. */
  private async finishSeal(seg: SegmentWriter, point: RecoveryPointRecord): Promise<void> {
    const t0 = performance.now();
    const path = segmentPath(this.o.dir, seg.seq, 'sealed');
    try {
      if (!seg.dropped) await seg.sync();
      const tSync = performance.now();
      if (!seg.dropped) {
        this.durable.set(seg.seq, {
          seq: seg.seq,
          path,
          openPath: seg.path,
          bytes: seg.bytes,
          point,
        });
        this.o.onShippable?.();
        const pieces = this.overlay.pieces(seg.seq);
        this.copyBuf ??= copyBuffer();
        await applyPiecesSliced(pieces, this.segs, this.o.disks, this.copyBuf, () => seg.dropped);
      }
      const tApply = performance.now();
      if (!seg.dropped) await Promise.all(this.o.disks.map((d) => d.syncAsync()));
      if (seg.dropped) {
        throw new SecondsiteError('SS_RESYNC_REQUIRED', 'journal overflowed during the cut', {
          vm: this.o.vmId,
          segment: seg.seq,
        });
      }
      renameSync(seg.path, path);
      fsyncDir(this.o.dir);
      this.overlay.removeSegment(seg.seq);
      if (seg.seq <= this.shippedThrough) {
        // Acknowledged by the peer while its seal was finishing: nothing left to ship.
        await rm(path, { force: true });
        await fsyncDirAsync(this.o.dir);
      } else {
        this.sealed.push({ seq: seg.seq, path, bytes: seg.bytes, point });
        this.sealedBytes += seg.bytes;
      }
      const ms = (a: number, b: number): number => Math.round(b - a);
      this.o.log.debug(
        {
          segment: seg.seq,
          bytes: seg.bytes,
          point: point.id,
          type: point.type,
          syncMs: ms(t0, tSync),
          applyMs: ms(tSync, tApply),
          diskSyncMs: ms(tApply, performance.now()),
        },
        'journal cut',
      );
    } finally {
      this.durable.delete(seg.seq);
      this.sealing.delete(seg);
      this.segs.delete(seg.seq);
      seg.close();
      if (seg.dropped) rmSync(seg.path, { force: true });
    }
  }

  sealedSegments(): SealedSegment[] {
    return [...this.sealed];
  }

  shippableSegments(): SealedSegment[] {
    if (this.durable.size === 0) return [...this.sealed];
    return [...this.sealed, ...this.durable.values()].sort((a, b) => a.seq - b.seq);
  }

  liveSegment(seq: number): LiveSegment | undefined {
    if (this.closed || this.current !== 'journaling' || this.durable.has(seq)) return undefined;
    const w = this.segs.get(seq);
    if (!w || w.dropped) return undefined;
    return { seq, path: w.path, written: w.bytes };
  }

  unshippedBytes(): number {
    if (this.current !== 'journaling') return 0;
    let n = this.sealedBytes + (this.active?.bytes ?? 0);
    for (const s of this.sealing) n += s.bytes;
    return n;
  }

  async markShipped(seq: number): Promise<void> {
    this.shippedThrough = Math.max(this.shippedThrough, seq);
    const gone: string[] = [];
    while (this.sealed.length > 0 && this.sealed[0]!.seq <= seq) {
      const s = this.sealed.shift()!;
      this.sealedBytes -= s.bytes;
      gone.push(s.path);
    }
    if (gone.length === 0) return;
    // Off the event loop: unlinking a segment of a large cycle takes a while (measured: 180 ms
    // for 540 MB), and NBD service and keepalive answers must not wait for it. A crash before
    // the unlinks land leaves segments the peer already has: the sender's resume drops them.
    await Promise.all(gone.map((p) => rm(p, { force: true })));
    await fsyncDirAsync(this.o.dir);
  }

  dirtyRanges(): Map<number, Array<[number, number]>> {
    return this.bitmap?.ranges() ?? new Map();
  }

  // ---- overflow and resync ----

  /** Journal over its cap: give it up for the dirty bitmap (steps in journal-resync.ts). */
  private overflow(pending: TouchedRange): void {
    const active = this.activeWriter();
    const live = [...this.sealing].filter((s) => !s.dropped);
    const ranges = touchedRanges([
      ...this.sealed.map((s) => ({ path: s.path })),
      ...live.map((s) => ({ path: s.path, limit: s.bytes })),
      { path: active.path, limit: active.bytes },
    ]);
    ranges.push(pending);
    const unshipped = this.unshippedBytes();
    this.drainOverlay(); // the journal is about to go: its newest bytes first
    for (const d of this.o.disks) d.syncSync();
    this.nextSeq = active.seq + 1;
    // Sealing segments keep their descriptors until their pending fdatasync returns.
    for (const s of live) s.dropped = true;
    this.bitmap = enterResyncRequired({
      dir: this.o.dir,
      diskSizes: this.o.disks.map((d) => d.size),
      ranges,
      segmentPaths: [...this.sealed.map((s) => s.path), active.path],
      nextSeq: this.nextSeq,
      bootId: this.bootId,
    });
    active.close();
    this.segs.delete(active.seq);
    this.active = undefined;
    this.sealed.length = 0;
    this.sealedBytes = 0;
    this.current = 'resync-required';
    this.o.log.warn(
      { unshippedBytes: unshipped, capBytes: this.capBytes, vm: this.o.vmId },
      'journal over its cap: journaling stopped, changes tracked in the dirty bitmap; resync required',
    );
  }

  async resetAfterResync(): Promise<Map<number, Array<[number, number]>>> {
    this.assertOpen();
    await this.sealChain;
    if (this.current !== 'resync-required') return new Map();
    const dirty = this.dirtyRanges();
    const seq = this.nextSeq;
    this.active = this.createSegment(seq);
    this.segs.set(seq, this.active);
    this.active.syncSync();
    fsyncDir(this.o.dir);
    writeStateFile(this.o.dir, this.stateFileBody('journaling'));
    this.bitmap?.close();
    this.bitmap = undefined;
    DirtyBitmap.remove(this.o.dir);
    this.current = 'journaling';
    this.o.log.info({ segment: seq }, 'journaling resumed after resync');
    return dirty;
  }

  // ---- lifecycle ----

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.sealChain;
    // The raw files must hold everything once closed (the journal may be deleted next). The
    // active segment stays: the next open replays it again, which changes nothing.
    this.drainOverlay();
    this.active?.syncSync();
    this.active?.close();
    this.bitmap?.close();
    for (const d of this.o.disks) await d.close();
    // A clean close: the next open need not suspect the page cache (journal-state.ts).
    const body = this.stateFileBody(this.current);
    writeStateFile(this.o.dir, { version: 1, state: body.state, nextSeq: body.nextSeq });
  }

  private stateFileBody(state: JournalState) {
    const nextSeq = this.active ? this.active.seq + 1 : this.nextSeq;
    return {
      version: 1 as const,
      state,
      nextSeq,
      ...(this.bootId === undefined ? {} : { openBootId: this.bootId }),
    };
  }

  /** Writes the overlay's newest bytes to the disks now, and forgets it. */
  private drainOverlay(): void {
    if (this.overlay.size === 0) return;
    this.copyBuf ??= copyBuffer();
    applyPiecesSync(this.overlay.pieces(), this.segs, this.o.disks, this.copyBuf);
    this.overlay.clear();
  }

  private createSegment(seq: number): SegmentWriter {
    this.nextSeq = seq + 1;
    return SegmentWriter.create(segmentPath(this.o.dir, seq, 'active'), {
      seq,
      vmId: this.o.vmId,
      created: this.o.clock.now(),
    });
  }

  private activeWriter(): SegmentWriter {
    if (!this.active) {
      throw new SecondsiteError('SS_IO', 'no active journal segment (a cut failed)', {
        vm: this.o.vmId,
      });
    }
    return this.active;
  }

  private raw(disk: number): RawDisk {
    const raw = this.o.disks[disk];
    if (!raw) throw new SecondsiteError('SS_NOT_FOUND', `no disk ${disk}`, { disk });
    return raw;
  }

  private assertOpen(): void {
    if (this.closed)
      throw new SecondsiteError('SS_CONFLICT', 'journal is closed', { vm: this.o.vmId });
  }
}
