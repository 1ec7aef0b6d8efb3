/**
 * A source and a replica of one VM in one process, for the initial-copy and resync component
 * tests: the source's disks behind a real VM journal, the replica's disks behind a real
 * recovery store, and a loopback between the engines. The loopback stands in for the gRPC
 * transport (tested separately in replication-transport.test.ts): it copies every buffer, as
 * a wire would, and counts the payload bytes that would travel.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../common/log/log.ts';
import { FakeClock } from '../../common/time/clock.ts';
import { readCoalescedSegment } from '../../agent/host/journal/segment-coalesce.ts';
import type { RecoveryPointRecord, VmJournal } from '../../agent/host/journal/types.ts';
import { openVmJournal, type VmJournalExtras } from '../../agent/host/journal/vm-journal.ts';
import { openReplicaStore } from '../../agent/host/recovery/replica-store.ts';
import type { ReplicaStore } from '../../agent/host/recovery/types.ts';
import type { ResyncJournal } from '../../agent/host/sync/resync-source.ts';
import type { Extent, GridCursor, ResyncPeer } from '../../agent/host/sync/types.ts';
import { RawDisk, createSparseImage } from '../../agent/host/vm/raw-disk.ts';
import type { Random } from './seeded-random.ts';
import { bytesFor } from './replica-model.ts';

export type LabJournal = VmJournal & VmJournalExtras;

/** Fills each `chunk` of a new image with random bytes, or leaves it zero with `zeroShare`. */
export function makeImage(
  path: string,
  size: number,
  chunk: number,
  r: Random,
  zeroShare: number,
): void {
  createSparseImage(path, size);
  const disk = RawDisk.open(path);
  for (let at = 0; at < size; at += chunk) {
    if (r.next() < zeroShare) continue;
    disk.writeSync(at, bytesFor(`${r.seed}:${path}:${at}`, Math.min(chunk, size - at)));
  }
  void disk.close();
}

export async function openSource(
  dir: string,
  sizes: readonly number[],
  opts: { capBytes?: number } = {},
): Promise<LabJournal> {
  const disks = sizes.map((_, i) => RawDisk.open(join(dir, `src${i}.img`)));
  return openVmJournal({
    dir: join(dir, 'journal'),
    vmId: 'vm-1',
    disks,
    clock: new FakeClock(),
    log: silentLogger,
    ...(opts.capBytes ? { capBytes: opts.capBytes } : {}),
  });
}

export interface Replica {
  readonly disks: RawDisk[];
  readonly paths: string[];
  store: ReplicaStore;
  reopen(): Promise<ReplicaStore>;
}

export async function openReplica(dir: string, sizes: readonly number[]): Promise<Replica> {
  const paths = sizes.map((size, i) => {
    const p = join(dir, `rep${i}.img`);
    try {
      createSparseImage(p, size);
    } catch {
      // exists: a reopen
    }
    return p;
  });
  mkdirSync(join(dir, 'replica'), { recursive: true });
  const disks = paths.map((p) => RawDisk.open(p));
  const open = () =>
    openReplicaStore({
      dir: join(dir, 'replica', 'store'),
      vmId: 'vm-1',
      disks,
      diskPaths: paths,
      clock: new FakeClock(),
      log: silentLogger,
      retentionHours: 24,
    });
  const rep: Replica = {
    disks,
    paths,
    store: await open(),
    reopen: async () => {
      await rep.store.close();
      rep.store = await open();
      return rep.store;
    },
  };
  return rep;
}

/**
 * Ships every sealed segment after `afterSeq` to the store in order (as the sender would) and
 * drops the ones at or before it (the copy or resync already covered them).
 */
export async function shipSegments(
  j: LabJournal,
  store: ReplicaStore,
  afterSeq: number,
): Promise<number> {
  let shipped = 0;
  for (const s of j.sealedSegments()) {
    if (s.seq > afterSeq) {
      const seg = readCoalescedSegment(s.path);
      await store.apply({ seq: s.seq, point: seg.point, extents: seg.extents });
      shipped++;
    }
    await j.markShipped(s.seq);
  }
  return shipped;
}

/** The source's current contents of disk `i`, read through the journal. */
export async function sourceBytes(j: LabJournal, i: number, size: number): Promise<Buffer> {
  return j.disk(i).read(0, size);
}

export function fileBytes(path: string): Buffer {
  return readFileSync(path);
}

/** Random writes of 4–64 KiB through the journal (the guest keeps writing). */
export async function guestWrites(
  j: LabJournal,
  sizes: readonly number[],
  r: Random,
  n: number,
): Promise<void> {
  for (let k = 0; k < n; k++) {
    const disk = r.int(sizes.length);
    const len = r.range(1, 16) * 4096;
    const off = r.int(Math.floor((sizes[disk]! - len) / 4096)) * 4096;
    await j.disk(disk).write(off, bytesFor(`w${r.seed}:${k}:${r.next()}`, len), false);
  }
}

/** The in-process stand-in for the transport (see the file comment). */
export class LoopbackPeer implements ResyncPeer {
  bytesSent = 0;
  applies = 0;
  constructor(
    private readonly target: ResyncPeer,
    private readonly hooks: {
      afterApply?: (n: number) => Promise<void> | void;
      beforeDiff?: () => Promise<void> | void;
    } = {},
  ) {}
  begin(s: Parameters<ResyncPeer['begin']>[0]) {
    return this.target.begin(s);
  }
  async diff(req: Parameters<ResyncPeer['diff']>[0]) {
    await this.hooks.beforeDiff?.();
    return this.target.diff({ ...req, hashes: req.hashes.map((h) => Buffer.from(h)) });
  }
  async apply(extents: readonly Extent[], cursor: GridCursor) {
    const copied = extents.map((e) => ({ ...e, data: e.data && Buffer.from(e.data) }));
    for (const e of copied) this.bytesSent += e.data?.length ?? 0;
    await this.target.apply(copied, cursor);
    await this.hooks.afterApply?.(++this.applies);
  }
  finish(baseSeq: number) {
    return this.target.finish(baseSeq);
  }
}

/** The quiet source: its disks never change, and every cut is the base point. */
export function quietSource(dir: string, sizes: readonly number[], baseSeq: number): ResyncJournal {
  const disks = sizes.map((_, i) => RawDisk.open(join(dir, `src${i}.img`)));
  const point: RecoveryPointRecord = {
    id: `base-${baseSeq}`,
    time: 0,
    type: 'crash-consistent',
    segment: baseSeq,
  };
  return {
    state: 'journaling',
    disk: (i) => disks[i]!,
    cut: async () => point,
    dirtyRanges: () => new Map(),
    markShipped: async () => undefined,
    resetAfterResync: async () => new Map(),
  };
}
