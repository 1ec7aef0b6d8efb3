/**
 * Undo file format (pure encoding; undo-file.ts does the I/O). One file per applied segment:
 * `undo/<seq, 12 digits>.undo`, written sequentially in one pass, all integers little-endian.
 *
 *   header   64 bytes   0  8  magic "SSUNDO01"
 *                       8  4  format version (1)
 *                      12  4  run count N
 *                      16  8  segment seq
 *                      24  8  data bytes D
 *                      32  4  disk count of the VM (sanity check)
 *                      36 24  reserved, zero
 *                      60  4  crc32 of bytes 0..59
 *   data     D bytes    the old contents of every run, back to back
 *   table    N × 32     per run: disk u32, crc32 of its data u32, offset u64, length u64,
 *                       file offset u64 of its data (run order = sorted by (disk, offset))
 *   footer   16 bytes   magic "SSUNDEND", crc32 of the table u32, reserved u32
 *
 * The geometry is in the header so the table can be found without scanning; the table follows
 * the data because it carries the data's checksums and the file is written in one sequential
 * pass. A file is complete iff its size is 64 + D + 32N + 16 and both crcs match; the apply
 * protocol fsyncs it before recording the intent that depends on it.
 *
 * Version 2 stores each run's file offset, so the data may lie in any order (a live segment's
 * undo data is staged in the order its ranges were first written, undo-stager.ts); the runs'
 * data still tile the data region exactly. Version 1 files (reserved zero there, data in run
 * order) are still read.
 */
import { crc32 } from 'node:zlib';
import { allocRuns, type UndoRuns } from './undo-runs.ts';

export const HEADER_BYTES = 64;
export const RUN_ENTRY_BYTES = 32;
export const FOOTER_BYTES = 16;
const MAGIC = Buffer.from('SSUNDO01', 'latin1');
const END_MAGIC = Buffer.from('SSUNDEND', 'latin1');
const VERSION = 2;
/** Versions this build reads. */
const READABLE_VERSIONS = new Set([1, 2]);

export interface UndoHeader {
  /** Format version (decoded headers only; encoding always writes the current one). */
  readonly version?: number;
  readonly seq: number;
  readonly runCount: number;
  readonly dataBytes: number;
  readonly diskCount: number;
}

export function undoFileBytes(h: Pick<UndoHeader, 'runCount' | 'dataBytes'>): number {
  return HEADER_BYTES + h.dataBytes + h.runCount * RUN_ENTRY_BYTES + FOOTER_BYTES;
}

export function undoFileName(seq: number): string {
  return `${String(seq).padStart(12, '0')}.undo`;
}

/** The seq an undo file name encodes, or undefined for any other file. */
export function parseUndoFileName(name: string): number | undefined {
  const m = /^(\d{12})\.undo$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

export function encodeHeader(h: UndoHeader, into: Buffer): void {
  into.fill(0, 0, HEADER_BYTES);
  MAGIC.copy(into, 0);
  into.writeUInt32LE(VERSION, 8);
  into.writeUInt32LE(h.runCount, 12);
  into.writeBigUInt64LE(BigInt(h.seq), 16);
  into.writeBigUInt64LE(BigInt(h.dataBytes), 24);
  into.writeUInt32LE(h.diskCount, 32);
  into.writeUInt32LE(crc32(into.subarray(0, 60)), 60);
}

/** Decodes a header; returns a reason string when it is not a valid one. */
export function decodeHeader(buf: Buffer): UndoHeader | string {
  if (buf.length < HEADER_BYTES) return 'short header';
  if (!buf.subarray(0, 8).equals(MAGIC)) return 'bad magic';
  if (buf.readUInt32LE(60) !== crc32(buf.subarray(0, 60))) return 'header checksum mismatch';
  const version = buf.readUInt32LE(8);
  if (!READABLE_VERSIONS.has(version)) return `unknown format version ${version}`;
  return {
    version,
    runCount: buf.readUInt32LE(12),
    seq: Number(buf.readBigUInt64LE(16)),
    dataBytes: Number(buf.readBigUInt64LE(24)),
    diskCount: buf.readUInt32LE(32),
  };
}

/** Table plus footer, as one buffer to append after the data. */
export function encodeTable(runs: UndoRuns): Buffer {
  const table = Buffer.alloc(runs.count * RUN_ENTRY_BYTES + FOOTER_BYTES);
  for (let i = 0; i < runs.count; i++) {
    const at = i * RUN_ENTRY_BYTES;
    table.writeUInt32LE(runs.disk[i]!, at);
    table.writeUInt32LE(runs.crc[i]!, at + 4);
    table.writeBigUInt64LE(BigInt(runs.offset[i]!), at + 8);
    table.writeBigUInt64LE(BigInt(runs.length[i]!), at + 16);
    table.writeBigUInt64LE(BigInt(runs.fileOffset[i]!), at + 24);
  }
  const footerAt = runs.count * RUN_ENTRY_BYTES;
  END_MAGIC.copy(table, footerAt);
  table.writeUInt32LE(crc32(table.subarray(0, footerAt)), footerAt + 8);
  return table;
}

/** Decodes table plus footer into runs, or a reason string. */
export function decodeTable(buf: Buffer, h: UndoHeader): UndoRuns | string {
  const footerAt = h.runCount * RUN_ENTRY_BYTES;
  if (buf.length !== footerAt + FOOTER_BYTES) return 'table size mismatch';
  if (!buf.subarray(footerAt, footerAt + 8).equals(END_MAGIC)) return 'bad footer magic';
  if (buf.readUInt32LE(footerAt + 8) !== crc32(buf.subarray(0, footerAt))) {
    return 'table checksum mismatch';
  }
  const runs = allocRuns(h.runCount);
  let at = HEADER_BYTES;
  for (let i = 0; i < h.runCount; i++) {
    const e = i * RUN_ENTRY_BYTES;
    runs.disk[i] = buf.readUInt32LE(e);
    runs.crc[i] = buf.readUInt32LE(e + 4);
    runs.offset[i] = Number(buf.readBigUInt64LE(e + 8));
    runs.length[i] = Number(buf.readBigUInt64LE(e + 16));
    // Version 1 lays the data out in run order; version 2 says where each run's data is.
    runs.fileOffset[i] = h.version === 1 ? at : Number(buf.readBigUInt64LE(e + 24));
    at += runs.length[i]!;
  }
  if (at - HEADER_BYTES !== h.dataBytes) return 'run lengths do not add up to the data size';
  return tiles(runs, h.dataBytes) ? runs : 'run data does not tile the data region';
}

/** The run indices in the order of their data in the file. */
export function fileOrder(runs: UndoRuns): number[] {
  const order = Array.from({ length: runs.count }, (_, i) => i);
  return order.sort((a, b) => runs.fileOffset[a]! - runs.fileOffset[b]!);
}

/** Whether the runs' data lie back to back from the header to the end of the data region. */
function tiles(runs: UndoRuns, dataBytes: number): boolean {
  let at = HEADER_BYTES;
  for (const i of fileOrder(runs)) {
    if (runs.fileOffset[i] !== at) return false;
    at += runs.length[i]!;
  }
  return at === HEADER_BYTES + dataBytes;
}
