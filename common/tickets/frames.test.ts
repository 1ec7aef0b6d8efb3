/** The sealed channel frames: altered, replayed, reordered, dropped and truncated traffic. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isSecondsiteError } from '../errors/errors.ts';
import { seededRandom, testSeed } from '../../test/helpers/seeded-random.ts';
import { FrameOpener, FrameSealer, MAX_FRAME_PLAINTEXT, type OpenedFrame } from './frames.ts';

const key = randomBytes(32);
const wire = (bufs: Buffer[]): Buffer => Buffer.concat(bufs);

/** The plaintext of `got`'s data entries, and whether it ended with the close. */
function plainOf(got: OpenedFrame[]): { data: Buffer; closed: boolean } {
  const data = Buffer.concat(got.flatMap((f) => (f.type === 'data' ? [f.data] : [])));
  return { data, closed: got.at(-1)?.type === 'close' };
}

/** The plaintext length of each frame on `bytes`, read from the length fields. */
function frameSizes(bytes: Buffer): number[] {
  const sizes: number[] = [];
  for (let at = 0; at < bytes.length; at += 4 + bytes.readUInt32BE(at)) {
    sizes.push(bytes.readUInt32BE(at) - 1 - 16);
  }
  return sizes;
}

function refused(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isSecondsiteError(e)) return e.code;
    throw e;
  }
  return 'accepted';
}

describe('sealed frames', () => {
  it('carries data in order, split at any byte, and ends with a close frame', () => {
    const s = new FrameSealer(key);
    const big = randomBytes(MAX_FRAME_PLAINTEXT * 2 + 5);
    const bytes = wire([...s.data(Buffer.from('hello')), ...s.data(big), ...s.close()]);
    const o = new FrameOpener(key);
    const got = [...o.push(bytes.subarray(0, 3)), ...o.push(bytes.subarray(3))];
    const data = Buffer.concat(got.flatMap((f) => (f.type === 'data' ? [f.data] : [])));
    expect(data.equals(Buffer.concat([Buffer.from('hello'), big]))).toBe(true);
    expect(got.at(-1)).toEqual({ type: 'close' });
    expect(o.closedCleanly).toBe(true);
  });

  it('refuses a flipped byte, a replayed, reordered or dropped frame, and another key', () => {
    const s = new FrameSealer(key);
    const [a, b] = [wire(s.data(Buffer.from('one'))), wire(s.data(Buffer.from('two')))];
    const flipped = Buffer.from(a);
    flipped[7]! ^= 1;
    expect(refused(() => new FrameOpener(key).push(flipped))).toBe('SS_PROTOCOL');
    expect(refused(() => new FrameOpener(key).push(wire([a, a])))).toBe('SS_PROTOCOL');
    expect(refused(() => new FrameOpener(key).push(wire([b, a])))).toBe('SS_PROTOCOL');
    expect(refused(() => new FrameOpener(key).push(b))).toBe('SS_PROTOCOL');
    expect(refused(() => new FrameOpener(randomBytes(32)).push(a))).toBe('SS_PROTOCOL');
    // A header turned into a close frame fails too (the type is associated data).
    const asClose = Buffer.from(a);
    asClose[4] = 1;
    expect(refused(() => new FrameOpener(key).push(asClose))).toBe('SS_PROTOCOL');
  });

  it('tells a truncated stream from a closed one', () => {
    const s = new FrameSealer(key);
    const o = new FrameOpener(key);
    o.push(wire(s.data(Buffer.from('partial'))));
    expect(o.closedCleanly).toBe(false);
    expect(refused(() => o.push(wire(s.close()).subarray(0, 10)))).toBe('accepted');
    expect(o.closedCleanly).toBe(false);
  });

  it('opens a stream split into two reads at every offset', () => {
    const s = new FrameSealer(key);
    const parts = [Buffer.from('a'), randomBytes(40), Buffer.alloc(0), randomBytes(300)];
    const bytes = wire([...parts.flatMap((p) => s.data(p)), ...s.close()]);
    const want = Buffer.concat(parts);
    for (let split = 0; split <= bytes.length; split++) {
      const o = new FrameOpener(key);
      const got = [...o.push(bytes.subarray(0, split)), ...o.push(bytes.subarray(split))];
      expect(plainOf(got)).toEqual({ data: want, closed: true });
    }
  });

  it('opens frames larger than a read, in reads of random sizes (seeded)', () => {
    const rnd = seededRandom(testSeed('sealed frames in random reads'));
    const s = new FrameSealer(key);
    const big = rnd.fill(Buffer.alloc(MAX_FRAME_PLAINTEXT * 3 + 777));
    const bytes = wire([...s.data(big), ...s.close()]);
    for (let round = 0; round < 20; round++) {
      const o = new FrameOpener(key);
      const got: OpenedFrame[] = [];
      for (let at = 0; at < bytes.length;) {
        const n = rnd.pick([1, 5, 16, 17, 21]) === 1 ? rnd.range(1, 21) : rnd.range(1, 70_000);
        got.push(...o.push(bytes.subarray(at, at + n)));
        at += n;
      }
      expect(plainOf(got).data.equals(big)).toBe(true);
      expect(o.closedCleanly).toBe(true);
    }
  });

  it('packs a batch of buffers into as few frames as fit, each within the limit', () => {
    const s = new FrameSealer(key);
    const batch = [
      Buffer.alloc(9, 1),
      randomBytes(16_384),
      ...Array.from({ length: 40 }, (_, i) => randomBytes(9 + ((i * 4099) % 16_384))),
    ];
    const total = batch.reduce((n, b) => n + b.length, 0);
    const sealed = wire(s.data(batch));
    const sizes = frameSizes(sealed);
    expect(sizes.length).toBe(Math.ceil(total / MAX_FRAME_PLAINTEXT));
    expect(sizes.every((n) => n <= MAX_FRAME_PLAINTEXT)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(total);
    const o = new FrameOpener(key);
    expect(plainOf(o.push(sealed)).data.equals(Buffer.concat(batch))).toBe(true);
    // Exactly one frame's worth, and one byte more.
    expect(frameSizes(wire(s.data([randomBytes(MAX_FRAME_PLAINTEXT)])))).toEqual([
      MAX_FRAME_PLAINTEXT,
    ]);
    const over = wire(s.data([randomBytes(MAX_FRAME_PLAINTEXT - 1), randomBytes(2)]));
    expect(frameSizes(over)).toEqual([MAX_FRAME_PLAINTEXT, 1]);
  });

  it('releases no plaintext of a frame before its tag is checked', () => {
    const s = new FrameSealer(key);
    const bytes = wire(s.data(randomBytes(100_000)));
    const o = new FrameOpener(key);
    expect(o.push(bytes.subarray(0, bytes.length - 1))).toEqual([]);
    expect(plainOf(o.push(bytes.subarray(bytes.length - 1))).data.length).toBe(100_000);
    // Altered in the body: nothing of it comes out, the tag check refuses it.
    const altered = wire(new FrameSealer(key).data(randomBytes(100_000)));
    altered[50_000]! ^= 1;
    const o2 = new FrameOpener(key);
    expect(o2.push(altered.subarray(0, altered.length - 1))).toEqual([]);
    expect(refused(() => o2.push(altered.subarray(altered.length - 1)))).toBe('SS_PROTOCOL');
  });

  it('refuses an altered tag or length, and data after the close in the same read', () => {
    const s = new FrameSealer(key);
    const a = wire(s.data(Buffer.from('one')));
    const badTag = Buffer.from(a);
    badTag[badTag.length - 1]! ^= 1;
    expect(refused(() => new FrameOpener(key).push(badTag))).toBe('SS_PROTOCOL');
    const longer = Buffer.from(a);
    longer.writeUInt32BE(a.readUInt32BE(0) + 1, 0);
    expect(refused(() => new FrameOpener(key).push(wire([longer, Buffer.alloc(1)])))).toBe(
      'SS_PROTOCOL',
    );
    const huge = Buffer.from(a);
    huge.writeUInt32BE(2 ** 31, 0);
    expect(refused(() => new FrameOpener(key).push(huge))).toBe('SS_PROTOCOL');
    const t = new FrameSealer(key);
    const closed = wire([...t.close()]);
    const o = new FrameOpener(key);
    expect(refused(() => o.push(wire([closed, Buffer.from([0])])))).toBe('SS_PROTOCOL');
  });
});
