import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { SocketReader } from './socket-reader.ts';

/** Just enough of a socket: data/end events and pause/resume bookkeeping. */
class FakeSocket extends EventEmitter {
  paused = false;
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  push(bytes: number[] | Buffer): void {
    this.emit('data', Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }
}

function reader(highWater?: number): { fake: FakeSocket; r: SocketReader } {
  const fake = new FakeSocket();
  return { fake, r: new SocketReader(fake as unknown as Socket, highWater) };
}

describe('SocketReader', () => {
  it('returns a view into the chunk when the bytes sit in one (no copy)', async () => {
    const { fake, r } = reader();
    const chunk = Buffer.from([1, 2, 3, 4, 5, 6]);
    fake.push(chunk);
    const a = (await r.read(2))!;
    const b = (await r.read(4))!;
    expect([...a, ...b]).toEqual([1, 2, 3, 4, 5, 6]);
    expect(a.buffer).toBe(chunk.buffer);
    expect(b.buffer).toBe(chunk.buffer);
    expect(r.buffered).toBe(0);
  });

  it('assembles a message spanning chunks and keeps the remainder', async () => {
    const { fake, r } = reader();
    const pending = r.read(5);
    fake.push([1, 2]);
    fake.push([3]);
    fake.push([4, 5, 6, 7]);
    expect([...(await pending)!]).toEqual([1, 2, 3, 4, 5]);
    expect(r.buffered).toBe(2);
    expect([...(await r.read(2))!]).toEqual([6, 7]);
  });

  it('resolves null at end of stream, also for a truncated message', async () => {
    const { fake, r } = reader();
    fake.push([1, 2]);
    const pending = r.read(4);
    fake.emit('end');
    expect(await pending).toBeNull();
    expect(await r.read(3)).toBeNull();
    // Bytes that arrived before the end stay readable.
    expect([...(await r.read(2))!]).toEqual([1, 2]);
  });

  it('refuses a second concurrent read', () => {
    const { r } = reader();
    void r.read(1);
    expect(() => r.read(1)).toThrow(/concurrent/);
  });

  it('pauses past the high-water mark and resumes once drained', async () => {
    const { fake, r } = reader(8);
    fake.push(Buffer.alloc(10));
    expect(fake.paused).toBe(true);
    await r.read(4);
    expect(fake.paused).toBe(false);
  });

  it('does not pause while the pending read needs more than the high-water mark', async () => {
    const { fake, r } = reader(8);
    const big = r.read(20);
    fake.push(Buffer.alloc(12));
    expect(fake.paused).toBe(false);
    fake.push(Buffer.alloc(8, 1));
    expect((await big)?.length).toBe(20);
  });
});
