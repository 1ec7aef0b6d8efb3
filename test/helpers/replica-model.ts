/**
 * A model of the replica store for tests: deterministic coalesced segments (the same seed and
 * seq always give the same segment, so a child process and the test agree without talking),
 * and shadow disks that apply them in memory.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Extent, RecoveryPointRecord } from '../../agent/host/journal/types.ts';
import type { IncomingSegment } from '../../agent/host/recovery/types.ts';
import { RawDisk } from '../../agent/host/vm/raw-disk.ts';
import { seededRandom, type Random } from './seeded-random.ts';

/** Fast deterministic bytes (AES-CTR keystream) for bulk data; seededRandom is for decisions. */
export function bytesFor(label: string, length: number): Buffer {
  const key = createHash('sha256').update(label).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return cipher.update(Buffer.alloc(length));
}

/** A fixed timeline for series whose times do not matter: one segment a minute. */
export function segmentTime(seq: number): number {
  return Date.UTC(2026, 0, 1) + seq * 60_000;
}

export interface SegmentShape {
  /** Most extents per disk per segment. @default 10 */
  readonly maxExtentsPerDisk?: number;
  /** Largest extent. @default 256 KiB */
  readonly maxExtentBytes?: number;
}

/**
 * Segment `seq` of the series `seed`: per disk a walk of extents with gaps of 0 (adjacent,
 * exercising run coalescing), a few bytes, or far; lengths from 1 byte (unaligned) to large
 * (crossing the 1 MiB run cut now and then); some zero extents; sometimes nothing at all.
 */
export function makeSegment(
  seed: number,
  seq: number,
  diskSizes: readonly number[],
  time: number,
  shape: SegmentShape = {},
): IncomingSegment {
  const rnd = seededRandom((seed ^ Math.imul(seq, 0x9e3779b1)) >>> 0);
  const extents: Extent[] = [];
  const empty = rnd.int(10) === 0;
  diskSizes.forEach((size, disk) => {
    if (empty) return;
    let pos = rnd.int(64 * 1024);
    const count = rnd.int((shape.maxExtentsPerDisk ?? 10) + 1);
    for (let i = 0; i < count; i++) {
      pos += gap(rnd, size);
      const length = extentLength(rnd, shape.maxExtentBytes ?? 256 * 1024);
      if (pos + length > size) break;
      const data = rnd.int(7) === 0 ? null : bytesFor(`${seed}/${seq}/${disk}/${i}`, length);
      extents.push({ disk, offset: pos, length, data });
      pos += length;
    }
  });
  const point: RecoveryPointRecord = {
    id: `p-${seq}`,
    time,
    type: seq % 4 === 0 ? 'app-consistent' : 'crash-consistent',
    segment: seq,
  };
  return { seq, point, extents };
}

function gap(rnd: Random, size: number): number {
  const kind = rnd.int(10);
  if (kind < 3) return 0;
  if (kind < 6) return rnd.int(8192);
  return rnd.int(Math.floor(size / 6));
}

function extentLength(rnd: Random, max: number): number {
  const kind = rnd.int(20);
  if (kind < 4) return rnd.range(1, 600);
  if (kind === 19) return Math.min(max * 6, 1536 * 1024);
  return rnd.range(1, Math.max(1, Math.floor(max / 4096))) * 4096;
}

/** Applies a segment to in-memory shadow disks. */
export function applyToShadow(shadow: Buffer[], seg: IncomingSegment): void {
  for (const e of seg.extents) {
    const disk = shadow[e.disk]!;
    if (e.data === null) disk.fill(0, e.offset, e.offset + e.length);
    else e.data.copy(disk, e.offset);
  }
}

/** Initial replica contents: random data in the first half of each disk, zeros after. */
export function initialContents(seed: number, diskSizes: readonly number[]): Buffer[] {
  return diskSizes.map((size, d) => {
    const b = Buffer.alloc(size);
    bytesFor(`${seed}/initial/${d}`, size / 2).copy(b);
    return b;
  });
}

/** Writes `contents` to disk image files in `dir` and returns their paths. */
export function writeDiskImages(dir: string, contents: readonly Buffer[]): string[] {
  return contents.map((c, d) => {
    const path = join(dir, `disk${d}.raw`);
    writeFileSync(path, c);
    return path;
  });
}

export function openDisks(paths: readonly string[]): RawDisk[] {
  return paths.map((p) => RawDisk.open(p));
}

/** The shadow at point `seq`: the initial contents with segments 1..seq applied. */
export function shadowAt(
  base: readonly Buffer[],
  seq: number,
  segment: (s: number) => IncomingSegment,
): Buffer[] {
  const shadow = base.map((b) => Buffer.from(b));
  for (let s = 1; s <= seq; s++) applyToShadow(shadow, segment(s));
  return shadow;
}

/** Whole-disk comparison with a readable failure (first differing offset). */
export function firstDifference(a: Buffer, b: Buffer): number | undefined {
  if (a.equals(b)) return undefined;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}
