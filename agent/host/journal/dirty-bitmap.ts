/**
 * Change tracking once the journal has overflowed: one bit per block of every disk, persisted
 * in `<dir>/dirty.bitmap` so that it survives kill -9 and power loss. A bit is set and made
 * durable *before* the write it covers reaches the disk, so a block can differ from the replica
 * only if its bit is set. Only a block's first touch costs an fdatasync; at the default 64 KiB
 * a 1 TiB disk has 16 Mi blocks, a 2 MiB bitmap.
 *
 * File layout (little-endian):
 *
 *   off     size field
 *     0        4 magic "SSDB"
 *     4        2 version (1)
 *     6        2 disk count n
 *     8        4 block size in bytes
 *    12        4 header length H = 20 + 8n
 *    16       8n disk sizes in bytes
 *    16+8n     4 CRC32 of the header bytes before it
 *     H        … per disk in order, ceil(blocks / 8) bytes; block b is bit (b & 7) of byte b >> 3
 *
 * The header is written once, with the file, through tmp + fsync + rename; afterwards only
 * bitmap bytes change, each update a single pwrite of whole bytes (a sector never tears).
 */
import {
  closeSync,
  fdatasyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
  constants,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { fsyncDir } from './journal-dir.ts';

const MAGIC = 0x42445353; // "SSDB"
const NAME = 'dirty.bitmap';
export const DEFAULT_DIRTY_BLOCK = 64 * 1024;

export class DirtyBitmap {
  private fd: number | undefined;

  private constructor(
    private readonly path: string,
    readonly blockSize: number,
    readonly diskSizes: readonly number[],
    private readonly bits: Buffer[],
    private readonly fileOffsets: number[],
  ) {}

  /**
   * Writes a new bitmap durably, with `initial` ranges already set (the changes of the journal
   * being given up), replacing any previous one.
   */
  static create(
    dir: string,
    diskSizes: readonly number[],
    initial: Iterable<{ disk: number; offset: number; length: number }>,
    blockSize = DEFAULT_DIRTY_BLOCK,
  ): DirtyBitmap {
    const bits = diskSizes.map((s) => Buffer.alloc(Math.ceil(Math.ceil(s / blockSize) / 8)));
    const header = encodeHeader(diskSizes, blockSize);
    const map = new DirtyBitmap(
      join(dir, NAME),
      blockSize,
      diskSizes,
      bits,
      offsets(header.length, bits),
    );
    for (const r of initial) map.setBits(r.disk, r.offset, r.length);
    const tmp = `${map.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeAll(fd, Buffer.concat([header, ...bits]), 0);
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, map.path);
    fsyncDir(dir);
    map.fd = openSync(map.path, constants.O_RDWR);
    return map;
  }

  /** Loads the bitmap; throws SS_JOURNAL_CORRUPT if it is missing, invalid or for other disks. */
  static open(dir: string, diskSizes: readonly number[]): DirtyBitmap {
    const path = join(dir, NAME);
    let file: Buffer;
    try {
      file = readFileSync(path);
    } catch (cause) {
      throw new SecondsiteError('SS_JOURNAL_CORRUPT', 'dirty bitmap missing', { path }, { cause });
    }
    const header = encodeHeader(diskSizes, readBlockSize(file));
    if (file.length < header.length || !file.subarray(0, header.length).equals(header)) {
      throw new SecondsiteError('SS_JOURNAL_CORRUPT', 'dirty bitmap invalid or for other disks', {
        path,
      });
    }
    const sizes = diskSizes.map((s) => Math.ceil(Math.ceil(s / readBlockSize(file)) / 8));
    const at = offsets(
      header.length,
      sizes.map((n) => ({ length: n })),
    );
    const bits = sizes.map((n, i) => Buffer.from(file.subarray(at[i]!, at[i]! + n)));
    if (bits.some((b, i) => b.length !== sizes[i])) {
      throw new SecondsiteError('SS_JOURNAL_CORRUPT', 'dirty bitmap truncated', { path });
    }
    const map = new DirtyBitmap(path, readBlockSize(file), diskSizes, bits, at);
    map.fd = openSync(path, constants.O_RDWR);
    return map;
  }

  static remove(dir: string): void {
    rmSync(join(dir, NAME), { force: true });
    rmSync(join(dir, `${NAME}.tmp`), { force: true });
  }

  /** Marks the blocks of a range; persists (pwrite + fdatasync) only if a bit was new. */
  markSync(disk: number, offset: number, length: number): void {
    const changed = this.setBits(disk, offset, length);
    if (!changed || this.fd === undefined) return;
    const [first, last] = changed;
    const b = this.bits[disk]!;
    writeAll(this.fd, b.subarray(first, last + 1), this.fileOffsets[disk]! + first);
    fdatasyncSync(this.fd);
  }

  /** Dirty ranges per disk, neighbouring blocks merged, the last one clipped to the disk size. */
  ranges(): Map<number, Array<[number, number]>> {
    const out = new Map<number, Array<[number, number]>>();
    this.bits.forEach((b, disk) => {
      const size = this.diskSizes[disk]!;
      const list: Array<[number, number]> = [];
      let runStart = -1;
      const blocks = Math.ceil(size / this.blockSize);
      for (let i = 0; i <= blocks; i++) {
        const set = i < blocks && ((b[i >> 3]! >> (i & 7)) & 1) === 1;
        if (set && runStart < 0) runStart = i;
        if (!set && runStart >= 0) {
          const from = runStart * this.blockSize;
          list.push([from, Math.min(i * this.blockSize, size) - from]);
          runStart = -1;
        }
      }
      if (list.length > 0) out.set(disk, list);
    });
    return out;
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }

  /** Sets bits in memory; returns the changed byte span of the disk's array, if any. */
  private setBits(disk: number, offset: number, length: number): [number, number] | undefined {
    const b = this.bits[disk];
    if (!b || length <= 0) return undefined;
    const first = Math.floor(offset / this.blockSize);
    const last = Math.floor((offset + length - 1) / this.blockSize);
    let lo = -1;
    let hi = -1;
    for (let i = first; i <= last; i++) {
      const mask = 1 << (i & 7);
      const byte = i >> 3;
      if ((b[byte]! & mask) !== 0) continue;
      b[byte] = b[byte]! | mask;
      if (lo < 0) lo = byte;
      hi = byte;
    }
    return lo < 0 ? undefined : [lo, hi];
  }
}

function encodeHeader(diskSizes: readonly number[], blockSize: number): Buffer {
  const length = 20 + 8 * diskSizes.length;
  const h = Buffer.alloc(length);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt16LE(1, 4);
  h.writeUInt16LE(diskSizes.length, 6);
  h.writeUInt32LE(blockSize, 8);
  h.writeUInt32LE(length, 12);
  diskSizes.forEach((s, i) => h.writeBigUInt64LE(BigInt(s), 16 + 8 * i));
  h.writeUInt32LE(crc32(h.subarray(0, length - 4)), length - 4);
  return h;
}

function readBlockSize(file: Buffer): number {
  const n = file.length >= 12 ? file.readUInt32LE(8) : 0;
  return n > 0 ? n : DEFAULT_DIRTY_BLOCK;
}

function offsets(headerLength: number, arrays: ReadonlyArray<{ length: number }>): number[] {
  let at = headerLength;
  return arrays.map((a) => {
    const here = at;
    at += a.length;
    return here;
  });
}

function writeAll(fd: number, b: Buffer, position: number): void {
  let done = 0;
  while (done < b.length) done += writeSync(fd, b, done, b.length - done, position + done);
}
