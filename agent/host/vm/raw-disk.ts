/**
 * A raw sparse image file as a BlockDevice. Zeroing punches nothing: it writes zeros through a
 * reused zero buffer, so the file's bytes are always exactly what the guest wrote (holes read
 * as zeros too, so a sparse new disk and a zeroed range look alike).
 *
 * I/O uses positional synchronous calls on one descriptor. The host agent's write path must
 * apply writes in the order it journals them; synchronous pwrite keeps that order trivially
 * and, measured here, is faster than the thread pool for page-cache writes.
 */
import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readSync,
  writeSync,
  constants,
  write,
} from 'node:fs';
import type { BlockDevice } from '../nbd/block-device.ts';

const ZERO_CHUNK = Buffer.alloc(1 << 20);

/** Creates a sparse raw image of `size` bytes; refuses to overwrite an existing file. */
export function createSparseImage(path: string, size: number): void {
  const fd = openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_RDWR, 0o600);
  try {
    ftruncateSync(fd, size);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class RawDisk implements BlockDevice {
  readonly size: number;
  readonly preferredBlockSize = 4096;
  private fd: number | undefined;

  private constructor(fd: number, size: number) {
    this.fd = fd;
    this.size = size;
  }

  static open(path: string): RawDisk {
    const fd = openSync(path, constants.O_RDWR);
    return new RawDisk(fd, fstatSync(fd).size);
  }

  /** Synchronous primitives, for callers (the journal) that sequence I/O themselves. */
  readSync(offset: number, length: number, into?: Buffer): Buffer {
    const buf = into ?? Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.handle(), buf, done, length - done, offset + done);
      if (n === 0) {
        buf.fill(0, done, length); // past EOF of a short file reads as zeros
        break;
      }
      done += n;
    }
    return buf;
  }

  writeSync(offset: number, data: Buffer): void {
    let done = 0;
    while (done < data.length) {
      done += writeSync(this.handle(), data, done, data.length - done, offset + done);
    }
  }

  /**
   * The same write on the thread pool: the event loop keeps receiving while the kernel copies
   * (page-cache writes ran at ~0.33 GB/s on this machine's loaded replica host, and done
   * synchronously they were half the initial copy's time on the replica's only thread). `data`
   * must stay untouched until the promise settles.
   */
  async writeAsync(offset: number, data: Buffer): Promise<void> {
    const fd = this.handle();
    let done = 0;
    while (done < data.length) {
      done += await new Promise<number>((resolve, reject) =>
        write(fd, data, done, data.length - done, offset + done, (e, n) =>
          e ? reject(e) : resolve(n),
        ),
      );
    }
  }

  zeroSync(offset: number, length: number): void {
    let done = 0;
    while (done < length) {
      const n = Math.min(ZERO_CHUNK.length, length - done);
      this.writeSync(
        offset + done,
        n === ZERO_CHUNK.length ? ZERO_CHUNK : ZERO_CHUNK.subarray(0, n),
      );
      done += n;
    }
  }

  syncSync(): void {
    fdatasyncSync(this.handle());
  }

  /** fdatasync on the thread pool: for a journal cut, which must not stall other I/O. */
  syncAsync(): Promise<void> {
    const fd = this.handle();
    return new Promise((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve())));
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    return this.readSync(offset, length, into);
  }

  async write(offset: number, data: Buffer, fua: boolean): Promise<void> {
    this.writeSync(offset, data);
    if (fua) this.syncSync();
  }

  async trim(offset: number, length: number, fua: boolean): Promise<void> {
    this.zeroSync(offset, length);
    if (fua) this.syncSync();
  }

  async writeZeroes(offset: number, length: number, fua: boolean): Promise<void> {
    await this.trim(offset, length, fua);
  }

  async flush(): Promise<void> {
    this.syncSync();
  }

  async close(): Promise<void> {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    fdatasyncSync(fd);
    closeSync(fd);
  }

  private handle(): number {
    if (this.fd === undefined) throw new Error('disk is closed');
    return this.fd;
  }
}
