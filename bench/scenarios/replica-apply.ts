/**
 * Replica apply path (LAB.md "Raw speeds": 64 KiB blocks apply at 0.63 GB/s bare, 0.20 GB/s
 * reading undo data first). A 1 GiB replica full of random data receives segments that each
 * change a random 1% of it in 64 KiB blocks (164 extents, 10.25 MiB), with the replica's page
 * cache dropped before every segment (per file, `dd iflag=nocache`; a real replica is far
 * larger than memory). Ours: ReplicaStore.apply with parallel reads of the old contents (undo
 * file with checksums, fsyncs, LevelDB sync writes, apply, fsync). Baseline: the naive
 * receiver — per block a sync read of the old contents, append it to an undo file, write the
 * block; fsync both at the end. Notes give our serial-read mode and the bare apply.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../common/log/log.ts';
import { FakeClock } from '../../common/time/clock.ts';
import type { Extent } from '../../agent/host/journal/types.ts';
import { openReplicaStore } from '../../agent/host/recovery/replica-store.ts';
import type { ReplicaStore } from '../../agent/host/recovery/types.ts';
import { RawDisk, createSparseImage } from '../../agent/host/vm/raw-disk.ts';
import { median, result, type Scenario } from '../harness.ts';

const GiB = 2 ** 30;
const BLOCK = 64 * 1024;
const BLOCKS = GiB / BLOCK;
const PER_SEGMENT = Math.round(BLOCKS / 100);
const SEGMENT_BYTES = PER_SEGMENT * BLOCK;
const SEGMENTS = Number(process.env['BENCH_SEGMENTS'] ?? 12);
const WARMUP = 2;

interface Rig {
  dir: string;
  path: string;
  disk: RawDisk;
  pool: Buffer;
  /** Reused by the naive baseline too: allocation is not what is compared. */
  old: Buffer;
}

function fillDisk(path: string): RawDisk {
  createSparseImage(path, GiB);
  const disk = RawDisk.open(path);
  const chunk = randomBytes(1 << 20);
  for (let at = 0; at < GiB; at += chunk.length) {
    chunk.writeUInt32LE(at / chunk.length, 0);
    disk.writeSync(at, chunk);
  }
  disk.syncSync();
  return disk;
}

/** A random 1% of the blocks, sorted, with data from a reused pool. */
function extents(pool: Buffer): Extent[] {
  const picked = new Set<number>();
  while (picked.size < PER_SEGMENT) picked.add(Math.floor(Math.random() * BLOCKS));
  return [...picked]
    .sort((a, b) => a - b)
    .map((b, i) => {
      const at = (i % 64) * BLOCK;
      return { disk: 0, offset: b * BLOCK, length: BLOCK, data: pool.subarray(at, at + BLOCK) };
    });
}

function dropCache(path: string): void {
  execFileSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']);
}

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function bare(rig: Rig, ex: readonly Extent[]): number {
  const t = process.hrtime.bigint();
  for (const e of ex) rig.disk.writeSync(e.offset, e.data!);
  rig.disk.syncSync();
  return seconds(t);
}

function naive(rig: Rig, ex: readonly Extent[], undoPath: string): number {
  const t = process.hrtime.bigint();
  const fd = openSync(undoPath, 'w', 0o600);
  try {
    ex.forEach((e, i) => {
      rig.disk.readSync(e.offset, e.length, rig.old);
      writeSync(fd, rig.old, 0, e.length, i * BLOCK);
      rig.disk.writeSync(e.offset, e.data!);
    });
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  rig.disk.syncSync();
  return seconds(t);
}

async function openStore(rig: Rig, name: string, parallel: boolean): Promise<ReplicaStore> {
  return openReplicaStore({
    dir: join(rig.dir, name),
    vmId: 'bench',
    disks: [rig.disk],
    ...(parallel ? { diskPaths: [rig.path] } : {}),
    clock: new FakeClock(),
    log: silentLogger,
    retentionHours: 24,
  });
}

async function timeApply(store: ReplicaStore, ex: Extent[]): Promise<number> {
  const seq = store.lastApplied + 1;
  const point = { id: `p${seq}`, time: seq, type: 'crash-consistent', segment: seq } as const;
  const t = process.hrtime.bigint();
  await store.apply({ seq, point, extents: ex });
  return seconds(t);
}

export const replicaApply: Scenario = {
  name: 'replica-apply',
  description: 'apply 1% random 64 KiB changes of a 1 GiB replica with undo data, cold cache',
  async run({ dir, say }) {
    const path = join(dir, 'replica.raw');
    const rig: Rig = {
      dir,
      path,
      disk: fillDisk(path),
      pool: randomBytes(64 * BLOCK),
      old: Buffer.alloc(BLOCK),
    };
    const parallel = await openStore(rig, 'parallel', true);
    const serial = await openStore(rig, 'serial', false);
    const times = {
      parallel: [] as number[],
      serial: [] as number[],
      naive: [] as number[],
      bare: [] as number[],
    };
    try {
      for (let i = 0; i < WARMUP + SEGMENTS; i++) {
        // Interleaved, so the machine's noise falls on every contender alike.
        const runs: Array<[keyof typeof times, () => Promise<number> | number]> = [
          ['parallel', () => timeApply(parallel, extents(rig.pool))],
          ['naive', () => naive(rig, extents(rig.pool), join(dir, 'naive.undo'))],
          ['serial', () => timeApply(serial, extents(rig.pool))],
          ['bare', () => bare(rig, extents(rig.pool))],
        ];
        for (const [name, run] of runs) {
          dropCache(path);
          const s = await run();
          if (i >= WARMUP) times[name].push(s);
        }
      }
    } finally {
      await parallel.close();
      await serial.close();
      await rig.disk.close();
    }
    const rate = (xs: number[]): number => SEGMENT_BYTES / 1e9 / median(xs);
    say(
      `GB/s: ours ${rate(times.parallel).toFixed(2)}, ours serial reads ${rate(times.serial).toFixed(2)}, ` +
        `naive ${rate(times.naive).toFixed(2)}, bare (no undo) ${rate(times.bare).toFixed(2)}`,
    );
    return [
      result(
        'replica-apply',
        'GB/s',
        'higher-is-better',
        rate(times.parallel),
        rate(times.naive),
        'naive receiver (sync read of old data per block)',
        `median of ${SEGMENTS} segments of ${SEGMENT_BYTES / 2 ** 20} MiB; ours with serial reads ` +
          `${rate(times.serial).toFixed(2)} GB/s; bare apply without undo ${rate(times.bare).toFixed(2)} GB/s`,
      ),
    ];
  },
};
