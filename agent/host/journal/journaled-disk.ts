/**
 * The journaled view of one disk, served over NBD in place of the raw disk. Each method does
 * all of its work synchronously inside the journal, so operations are journaled in exactly
 * the order the NBD server issues them, reads see every completed write, and a cut taken
 * between two calls splits them cleanly. Failures reject with SS_IO (an NBD EIO reply).
 */
import { SecondsiteError, isSecondsiteError } from '../../../common/errors/errors.ts';
import type { BlockDevice } from '../nbd/block-device.ts';

/** What the VM journal offers its disks; each call completes before it returns. */
export interface JournalWritePath {
  readSync(disk: number, offset: number, length: number, into?: Buffer): Buffer;
  writeSync(disk: number, offset: number, data: Buffer, fua: boolean): void;
  zeroSync(disk: number, kind: 'trim' | 'zero', offset: number, length: number, fua: boolean): void;
  flushSync(disk: number): void;
}

export class JournaledDisk implements BlockDevice {
  readonly preferredBlockSize = 4096;
  private closed = false;

  constructor(
    private readonly journal: JournalWritePath,
    private readonly index: number,
    readonly size: number,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    return this.run('read', () => this.journal.readSync(this.index, offset, length, into));
  }

  async write(offset: number, data: Buffer, fua: boolean): Promise<void> {
    this.run('write', () => this.journal.writeSync(this.index, offset, data, fua));
  }

  async trim(offset: number, length: number, fua: boolean): Promise<void> {
    this.run('trim', () => this.journal.zeroSync(this.index, 'trim', offset, length, fua));
  }

  async writeZeroes(offset: number, length: number, fua: boolean): Promise<void> {
    this.run('write-zeroes', () => this.journal.zeroSync(this.index, 'zero', offset, length, fua));
  }

  async flush(): Promise<void> {
    this.run('flush', () => this.journal.flushSync(this.index));
  }

  /** Flushes this disk; the disk itself is closed with the journal (VmJournal.close). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.run('flush', () => this.journal.flushSync(this.index));
    this.closed = true;
  }

  private run<T>(op: string, fn: () => T): T {
    if (this.closed) {
      throw new SecondsiteError('SS_CONFLICT', `journaled disk ${this.index} is closed`, { op });
    }
    try {
      return fn();
    } catch (e) {
      if (isSecondsiteError(e)) throw e;
      throw new SecondsiteError(
        'SS_IO',
        `journaled ${op} on disk ${this.index} failed`,
        { op },
        { cause: e },
      );
    }
  }
}
