/**
 * The I/O around the overlay (overlay-map-pure.ts): reads that merge journaled bytes over the
 * raw disk, and applying journaled pieces to the raw disks.
 *
 * Applying after a cut runs in synchronous slices of at most COPY_CHUNK bytes, yielding to the
 * event loop between slices: no disk write of an old segment is ever in flight while the
 * journal runs synchronous code (an overflow applies the newest data synchronously and must
 * not be overtaken by an older write landing later).
 */
import type { RawDisk } from '../vm/raw-disk.ts';
import type { OverlayMap, Piece } from './overlay-map-pure.ts';
import type { SegmentWriter } from './segment-writer.ts';

/** 4 MiB: one NBD request's worth or more per slice, about 2 ms of copying at page-cache speed. */
const COPY_CHUNK = 4 << 20;
/**
 * Yield to other I/O after this many bytes applied: one chunk, so NBD requests and the live
 * sender (which ships the segment's end as this catch-up begins) wait at most a couple of ms.
 */
const SLICE_BYTES = 4 << 20;

export type SegmentsBySeq = ReadonlyMap<number, SegmentWriter>;

export function readThrough(
  overlay: OverlayMap,
  segs: SegmentsBySeq,
  raw: RawDisk,
  disk: number,
  offset: number,
  length: number,
  /** Read into this (exactly `length` bytes) instead of fresh memory. */
  buffer?: Buffer,
): Buffer {
  const spans = overlay.lookup(disk, offset, length);
  const only = spans[0];
  if (spans.length === 1 && only && only.src === null) return raw.readSync(offset, length, buffer);
  const out = buffer ?? Buffer.allocUnsafe(length);
  for (const s of spans) {
    const into = out.subarray(s.start - offset, s.end - offset);
    if (s.src === null) raw.readSync(s.start, into.length, into);
    else if (s.src.kind === 'zero') into.fill(0);
    else segment(segs, s.src.seg).readInto(into, s.src.pos);
  }
  return out;
}

/** Writes pieces to their disks now (overflow, close). */
export function applyPiecesSync(
  pieces: ReadonlyArray<Piece & { disk: number }>,
  segs: SegmentsBySeq,
  disks: readonly RawDisk[],
  buf: Buffer,
): void {
  for (const p of pieces) {
    for (let at = p.start; at < p.end; at += COPY_CHUNK) applyChunk(p, at, segs, disks, buf);
  }
}

/**
 * Writes pieces to their disks in slices, between which other I/O runs. Returns false if
 * `stop()` turned true (the segment was dropped) before all were written.
 */
export async function applyPiecesSliced(
  pieces: ReadonlyArray<Piece & { disk: number }>,
  segs: SegmentsBySeq,
  disks: readonly RawDisk[],
  buf: Buffer,
  stop: () => boolean,
): Promise<boolean> {
  let sinceYield = 0;
  for (const p of pieces) {
    for (let at = p.start; at < p.end; at += COPY_CHUNK) {
      if (sinceYield >= SLICE_BYTES) {
        await new Promise((r) => setImmediate(r));
        sinceYield = 0;
      }
      if (stop()) return false;
      sinceYield += applyChunk(p, at, segs, disks, buf);
    }
  }
  return !stop();
}

function applyChunk(
  p: Piece & { disk: number },
  at: number,
  segs: SegmentsBySeq,
  disks: readonly RawDisk[],
  buf: Buffer,
): number {
  const raw = disks[p.disk];
  if (!raw) throw new Error(`journal piece for missing disk ${p.disk}`);
  const n = Math.min(COPY_CHUNK, p.end - at, buf.length);
  if (p.src.kind === 'zero') {
    raw.zeroSync(at, n);
  } else {
    const chunk = buf.subarray(0, n);
    segment(segs, p.src.seg).readInto(chunk, p.src.pos + (at - p.start));
    raw.writeSync(at, chunk);
  }
  return n;
}

function segment(segs: SegmentsBySeq, seq: number): SegmentWriter {
  const s = segs.get(seq);
  if (!s) throw new Error(`journal segment ${seq} is not open`);
  return s;
}

export function copyBuffer(): Buffer {
  return Buffer.allocUnsafe(COPY_CHUNK);
}
