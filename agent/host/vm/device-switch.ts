/**
 * A BlockDevice whose backing device can be swapped while an NBD export serves it, so a
 * running VM is protected (raw disk → journaled disk) or unprotected without disconnecting its
 * guest. hold() holds new requests and waits for those in flight, replace() switches, and the
 * release lets the held requests through to the new device.
 */
import type { BlockDevice } from '../nbd/block-device.ts';

export class SwitchableDevice implements BlockDevice {
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private gate: Promise<void> | undefined;

  constructor(
    private current: BlockDevice,
    /** Told of every guest write (churn-stats.ts measures churn from it). */
    private readonly onWrite?: (offset: number, length: number) => void,
  ) {}

  get size(): number {
    return this.current.size;
  }

  get preferredBlockSize(): number {
    return this.current.preferredBlockSize;
  }

  /**
   * Holds new requests and waits for the ones in flight. While held, `replace()` may switch the
   * backing device; the returned function releases the held requests (onto the new device).
   * The VM holds all its disks at once, so a protect or unprotect is one instant across them.
   */
  async hold(): Promise<() => void> {
    while (this.gate) await this.gate;
    let open!: () => void;
    this.gate = new Promise((resolve) => (open = resolve));
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    return () => {
      this.gate = undefined;
      open();
    };
  }

  /** Only while held. */
  replace(device: BlockDevice): void {
    if (!this.gate) throw new Error('replace() needs hold() first');
    if (device.size !== this.current.size) {
      throw new Error(`new device has size ${device.size}, expected ${this.current.size}`);
    }
    this.current = device;
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.op((d) => d.read(offset, length));
  }
  write(offset: number, data: Buffer, fua: boolean): Promise<void> {
    this.onWrite?.(offset, data.length);
    return this.op((d) => d.write(offset, data, fua));
  }
  trim(offset: number, length: number, fua: boolean): Promise<void> {
    return this.op((d) => d.trim(offset, length, fua));
  }
  writeZeroes(offset: number, length: number, fua: boolean): Promise<void> {
    return this.op((d) => d.writeZeroes(offset, length, fua));
  }
  flush(): Promise<void> {
    return this.op((d) => d.flush());
  }
  /** The owner closes the backing devices; the export closing this one changes nothing. */
  async close(): Promise<void> {}

  private async op<T>(fn: (d: BlockDevice) => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    this.inFlight++;
    try {
      return await fn(this.current);
    } finally {
      if (--this.inFlight === 0 && this.drained) {
        const d = this.drained;
        this.drained = undefined;
        d();
      }
    }
  }
}
