/**
 * The undo log of a resync: the replica's bytes at the last good point, saved before a resync
 * overwrites them, so that every retained point stays readable (and revertible) while the
 * replica disks are mid-resync (Hyper-V Replica drops all points here).
 *
 * `<dir>/resync/undo.log` is append-only; each record is
 *
 *   off size field (little-endian)
 *     0    4 magic "SSRU"
 *     4    4 disk
 *     8    8 offset
 *    16    4 length (at most 16 MiB)
 *    20    4 crc32 of the data
 *    24    4 reserved, zero
 *    28    4 crc32 of bytes 0..27
 *    32    … the data: the range's contents just before the resync batch wrote it
 *
 * Crash safety: a batch's records are fdatasynced before any of its replica writes, so a torn
 * record can only belong to a batch that wrote nothing; open() keeps the log up to the first
 * bad record and truncates there. Records are never rolled back: a record whose writes never
 * happened holds bytes equal to the disk's, which is harmless. resync-map.ts explains why only
 * the first record of each byte counts.
 */
import {
  closeSync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  rmSync,
  writeSync,
  constants,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Extent } from '../journal/types.ts';
import type { RawDisk } from '../vm/raw-disk.ts';
import { FirstWriteMap, type LayerTouch } from './resync-map.ts';
import { fsyncDir, preadFull } from './undo-file.ts';

const MAGIC = 0x55525353; // "SSRU"
const HEADER = 32;
const MAX_RECORD = 16 << 20;

export class ResyncLayer {
  private readonly map = new FirstWriteMap();
  private size = 0;

  private constructor(
    private readonly dir: string,
    private fd: number,
  ) {}

  static path(storeDir: string): string {
    return join(storeDir, 'resync', 'undo.log');
  }

  /** Opens (creating) the log and indexes its valid records; `buffer` is scratch space. */
  static open(storeDir: string, diskCount: number, buffer: Buffer): ResyncLayer {
    const dir = join(storeDir, 'resync');
    mkdirSync(dir, { recursive: true });
    const fd = openSync(join(dir, 'undo.log'), constants.O_CREAT | constants.O_RDWR, 0o600);
    const layer = new ResyncLayer(dir, fd);
    layer.scan(diskCount, buffer);
    fsyncDir(dir);
    fsyncDir(storeDir);
    return layer;
  }

  private scan(diskCount: number, buffer: Buffer): void {
    const total = fstatSync(this.fd).size;
    let pos = 0;
    const head = Buffer.alloc(HEADER);
    while (pos + HEADER <= total) {
      preadFull(this.fd, head, pos);
      const h = decodeRecordHeader(head);
      if (!h || h.disk >= diskCount || pos + HEADER + h.length > total) break;
      const data =
        buffer.length >= h.length ? buffer.subarray(0, h.length) : Buffer.alloc(h.length);
      preadFull(this.fd, data, pos + HEADER);
      if (crc32(data) !== h.crc) break;
      this.map.add(h.disk, h.offset, h.length, pos + HEADER);
      pos += HEADER + h.length;
    }
    if (pos < total) {
      ftruncateSync(this.fd, pos);
      fdatasyncSync(this.fd);
    }
    this.size = pos;
  }

  /**
   * Resync batch step 1: appends the current contents of every extent's range and makes them
   * durable. Only then may the caller write the extents.
   */
  saveOldContents(extents: readonly Extent[], disks: readonly RawDisk[], buffer: Buffer): void {
    const head = Buffer.alloc(HEADER);
    for (const e of extents) {
      for (let done = 0; done < e.length;) {
        const n = Math.min(e.length - done, buffer.length, MAX_RECORD);
        const old = disks[e.disk]!.readSync(e.offset + done, n, buffer.subarray(0, n));
        encodeRecordHeader(head, e.disk, e.offset + done, n, crc32(old));
        writeFull(this.fd, head, this.size);
        writeFull(this.fd, old, this.size + HEADER);
        this.map.add(e.disk, e.offset + done, n, this.size + HEADER);
        this.size += HEADER + n;
        done += n;
      }
    }
    fdatasyncSync(this.fd);
  }

  touching(disk: number, start: number, end: number): LayerTouch[] {
    return this.map.touching(disk, start, end);
  }

  /** Reads old bytes of piece `ref` of `disk`, starting at disk offset `from` inside it. */
  readPiece(disk: number, ref: number, from: number, into: Buffer): void {
    const p = this.map.piece(disk, ref);
    if (!p) throw new Error(`resync piece ${disk}/${ref} is not indexed`);
    preadFull(this.fd, into, p.at + from - p.offset);
  }

  /**
   * Writes the last good point's bytes back over everything the resync changed, then fsyncs
   * the disks. Idempotent: each byte gets its first record's contents, whatever ran before.
   */
  writeBack(disks: readonly RawDisk[], buffer: Buffer): void {
    for (const [disk, p] of this.map.all()) {
      for (let done = 0; done < p.length;) {
        const n = Math.min(p.length - done, buffer.length);
        const into = buffer.subarray(0, n);
        preadFull(this.fd, into, p.at + done);
        disks[disk]!.writeSync(p.offset + done, into);
        done += n;
      }
    }
    for (const d of disks) d.syncSync();
  }

  get bytes(): number {
    return this.size;
  }

  coveredBytes(): number {
    return this.map.coveredBytes();
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }

  /** Deletes the log (the resync's points are gone or it was undone). */
  remove(): void {
    this.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function encodeRecordHeader(
  h: Buffer,
  disk: number,
  offset: number,
  length: number,
  crc: number,
): void {
  h.fill(0);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt32LE(disk, 4);
  h.writeBigUInt64LE(BigInt(offset), 8);
  h.writeUInt32LE(length, 16);
  h.writeUInt32LE(crc, 20);
  h.writeUInt32LE(crc32(h.subarray(0, 28)), 28);
}

function decodeRecordHeader(
  h: Buffer,
): { disk: number; offset: number; length: number; crc: number } | undefined {
  if (h.readUInt32LE(0) !== MAGIC || h.readUInt32LE(28) !== crc32(h.subarray(0, 28)))
    return undefined;
  const length = h.readUInt32LE(16);
  if (length === 0 || length > MAX_RECORD) return undefined;
  return {
    disk: h.readUInt32LE(4),
    offset: Number(h.readBigUInt64LE(8)),
    length,
    crc: h.readUInt32LE(20),
  };
}

function writeFull(fd: number, data: Buffer, position: number): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done);
}
