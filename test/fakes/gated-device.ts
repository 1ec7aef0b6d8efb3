/**
 * A BlockDevice over a RawDisk for NBD server tests: writes wait until `open()` is called (to
 * hold requests in flight), TRIM fails like a full disk and WRITE_ZEROES like a broken one.
 */
import type { BlockDevice } from '../../agent/host/nbd/block-device.ts';
import type { RawDisk } from '../../agent/host/vm/raw-disk.ts';

export class GatedDevice implements BlockDevice {
  readonly size: number;
  readonly preferredBlockSize = 4096;
  entered = 0;
  private release: () => void = () => {};
  private readonly gate = new Promise<void>((r) => (this.release = r));

  constructor(private readonly inner: RawDisk) {
    this.size = inner.size;
  }
  open(): void {
    this.release();
  }
  read(o: number, n: number): Promise<Buffer> {
    return this.inner.read(o, n);
  }
  async write(o: number, d: Buffer, fua: boolean): Promise<void> {
    this.entered++;
    await this.gate;
    await this.inner.write(o, d, fua);
  }
  async trim(): Promise<void> {
    throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
  }
  async writeZeroes(): Promise<void> {
    throw new Error('device broken');
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
