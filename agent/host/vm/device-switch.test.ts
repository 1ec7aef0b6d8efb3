import { describe, expect, it } from 'vitest';
import type { BlockDevice } from '../nbd/block-device.ts';
import { SwitchableDevice } from './device-switch.ts';

/** A device that records calls and can hold writes open until told. */
function recordingDevice(name: string, log: string[]): BlockDevice & { release(): void } {
  let release: () => void = () => undefined;
  return {
    size: 1 << 20,
    preferredBlockSize: 4096,
    read: async () => Buffer.alloc(0),
    write: (off: number) =>
      new Promise<void>((resolve) => {
        log.push(`${name}:write:${off}`);
        release = () => {
          log.push(`${name}:done:${off}`);
          resolve();
        };
      }),
    trim: async () => undefined,
    writeZeroes: async () => undefined,
    flush: async () => undefined,
    close: async () => undefined,
    release: () => release(),
  };
}

describe('SwitchableDevice', () => {
  it('waits for requests in flight, holds new ones, and releases them onto the new device', async () => {
    const log: string[] = [];
    const a = recordingDevice('a', log);
    const b = recordingDevice('b', log);
    const dev = new SwitchableDevice(a);
    const first = dev.write(0, Buffer.alloc(1), false);
    const holding = dev.hold();
    const second = dev.write(4096, Buffer.alloc(1), false); // arrives while held
    a.release();
    await first;
    const release = await holding;
    dev.replace(b);
    log.push('swapped');
    release();
    await new Promise((r) => setImmediate(r));
    b.release();
    await second;
    expect(log).toEqual(['a:write:0', 'a:done:0', 'swapped', 'b:write:4096', 'b:done:4096']);
  });

  it('refuses a device of another size', async () => {
    const dev = new SwitchableDevice(recordingDevice('a', []));
    const release = await dev.hold();
    expect(() => dev.replace({ ...recordingDevice('b', []), size: 1 })).toThrow(/size/);
    release();
  });
});
