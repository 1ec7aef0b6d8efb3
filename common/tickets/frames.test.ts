/** The sealed channel frames: altered, replayed, reordered, dropped and truncated traffic. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isSecondsiteError } from '../errors/errors.ts';
import { FrameOpener, FrameSealer, MAX_FRAME_PLAINTEXT } from './frames.ts';

const key = randomBytes(32);
const wire = (bufs: Buffer[]): Buffer => Buffer.concat(bufs);

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
});
