/**
 * The per-VM write journal (Hyper-V Replica's log): every change to the VM's disks is appended
 * to the active segment, then applied to the raw disk, in one synchronous step. Hence:
 * - journal order is disk order, and a cut (also synchronous) falls between two operations,
 *   never inside one: a recovery point is exact across all disks without any lock;
 * - recovery after kill -9 replays the segment tail the disks may lack (journal-recovery.ts).
 *
 * Lifecycle (`state`):
 *   journaling ──(unshipped bytes would pass capBytes)──▶ resync-required
 *   resync-required ──(resetAfterResync)──▶ journaling
 * A cut appends SEAL and switches to segment seq+1 synchronously; making the sealed segment
 * and the disks durable runs on the thread pool so the VM's I/O continues meanwhile; the cut
 * resolves once the segment is renamed `.seg`. Seals complete in seq order.
 */
import { randomUUID } from 'node:crypto';
import { renameSync, rmSync } from 'node:fs';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { Clock } from '../../../common/time/clock.ts';
import type { RawDisk } from '../vm/raw-disk.ts';
import { DirtyBitmap } from './dirty-bitmap.ts';
import { fsyncDir, segmentPath } from './journal-dir.ts';
import { recoverJournal } from './journal-recovery.ts';
import { enterResyncRequired, touchedRanges, type TouchedRange } from './journal-resync.ts';
import { writeStateFile } from './journal-state.ts';
import { JournaledDisk, type JournalWritePath } from './journaled-disk.ts';
import { FLAG_FUA, RecordType } from './segment-format.ts';
import { SegmentWriter } from './segment-writer.ts';
import type {
  JournalState,
  RecoveryPointRecord,
  RecoveryPointType,
  SealedSegment,
  VmJournal,
} from './types.ts';

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
  /** After a resync has taken dirtyRanges(): journal again from a fresh segment. */
  resetAfterResync(): Promise<void>;
}

class VmJournalImpl implements VmJournal, VmJournalExtras, JournalWritePath {
  private current: JournalState;
  private active: SegmentWriter | undefined;
  private readonly sealing = new Set<SegmentWriter>();
  private readonly sealed: SealedSegment[];
  private sealedBytes: number;
  private bitmap: DirtyBitmap | undefined;
  private nextSeq: number;
  private readonly bootId: string | undefined;
  private sealChain: Promise<void> = Promise.resolve();
  private readonly views = new Map<number, JournaledDisk>();
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

  // ---- write path (JournalWritePath): record first, then the disk, all synchronous ----

  readSync(disk: number, offset: number, length: number): Buffer {
    this.assertOpen();
    return this.raw(disk).readSync(offset, length);
  }

  writeSync(disk: number, offset: number, data: Buffer, fua: boolean): void {
    const raw = this.raw(disk);
    this.record(RecordType.write, disk, offset, data.length, data, fua);
    raw.writeSync(offset, data);
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
    this.record(
      kind === 'trim' ? RecordType.trim : RecordType.zero,
      disk,
      offset,
      length,
      null,
      fua,
    );
    raw.zeroSync(offset, length);
    if (fua) this.syncDurable(raw);
  }

  flushSync(disk: number): void {
    this.syncDurable(this.raw(disk));
  }

  private record(
    type: typeof RecordType.write | typeof RecordType.trim | typeof RecordType.zero,
    disk: number,
    offset: number,
    length: number,
    data: Buffer | null,
    fua: boolean,
  ): void {
    this.assertOpen();
    if (this.current === 'journaling') {
      const bytes = SegmentWriter.recordBytes(data?.length ?? 0);
      if (this.unshippedBytes() + bytes > this.capBytes) this.overflow({ disk, offset, length });
    }
    if (this.current === 'journaling') {
      this.activeWriter().append(type, disk, offset, length, data, fua ? FLAG_FUA : 0);
    } else {
      this.bitmap?.markSync(disk, offset, length);
    }
  }

  /** Everything acknowledged so far on stable storage: segments still open, then the disk. */
  private syncDurable(raw: RawDisk): void {
    this.active?.syncSync();
    for (const s of this.sealing) if (!s.dropped) s.syncSync();
    raw.syncSync();
  }

  // ---- cuts and shipping ----

  async cut(opts: {
    type: RecoveryPointType;
    freezeFailed?: string;
  }): Promise<RecoveryPointRecord> {
    this.assertOpen();
    if (this.current !== 'journaling') {
      throw new SecondsiteError(
        'SS_RESYNC_REQUIRED',
        'journal overflowed: no recovery point until a resync',
        {
          vm: this.o.vmId,
        },
      );
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

  private async finishSeal(seg: SegmentWriter, point: RecoveryPointRecord): Promise<void> {
    try {
      if (!seg.dropped) {
        await seg.sync();
        await Promise.all(this.o.disks.map((d) => d.syncAsync()));
      }
      if (seg.dropped) {
        throw new SecondsiteError('SS_RESYNC_REQUIRED', 'journal overflowed during the cut', {
          vm: this.o.vmId,
          segment: seg.seq,
        });
      }
      const path = segmentPath(this.o.dir, seg.seq, 'sealed');
      renameSync(seg.path, path);
      fsyncDir(this.o.dir);
      this.sealed.push({ seq: seg.seq, path, bytes: seg.bytes, point });
      this.sealedBytes += seg.bytes;
      this.o.log.debug(
        { segment: seg.seq, bytes: seg.bytes, point: point.id, type: point.type },
        'journal cut',
      );
    } finally {
      this.sealing.delete(seg);
      seg.close();
      if (seg.dropped) rmSync(seg.path, { force: true });
    }
  }

  sealedSegments(): SealedSegment[] {
    return [...this.sealed];
  }

  unshippedBytes(): number {
    if (this.current !== 'journaling') return 0;
    let n = this.sealedBytes + (this.active?.bytes ?? 0);
    for (const s of this.sealing) n += s.bytes;
    return n;
  }

  async markShipped(seq: number): Promise<void> {
    let removed = 0;
    while (this.sealed.length > 0 && this.sealed[0]!.seq <= seq) {
      const s = this.sealed.shift()!;
      this.sealedBytes -= s.bytes;
      rmSync(s.path, { force: true });
      removed++;
    }
    if (removed > 0) fsyncDir(this.o.dir);
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
    this.active = undefined;
    this.sealed.length = 0;
    this.sealedBytes = 0;
    this.current = 'resync-required';
    this.o.log.warn(
      { unshippedBytes: unshipped, capBytes: this.capBytes, vm: this.o.vmId },
      'journal over its cap: journaling stopped, changes tracked in the dirty bitmap; resync required',
    );
  }

  async resetAfterResync(): Promise<void> {
    this.assertOpen();
    await this.sealChain;
    if (this.current !== 'resync-required') return;
    const seq = this.nextSeq;
    this.active = this.createSegment(seq);
    this.active.syncSync();
    fsyncDir(this.o.dir);
    writeStateFile(this.o.dir, this.stateFileBody('journaling'));
    this.bitmap?.close();
    this.bitmap = undefined;
    DirtyBitmap.remove(this.o.dir);
    this.current = 'journaling';
    this.o.log.info({ segment: seq }, 'journaling resumed after resync');
  }

  // ---- lifecycle ----

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.sealChain;
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
