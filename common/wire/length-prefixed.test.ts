import { describe, expect, it } from 'vitest';
import { FrameReader, frame } from './length-prefixed.ts';

describe('FrameReader', () => {
  it('reassembles frames split at every byte boundary', () => {
    const stream = Buffer.concat([
      frame(Buffer.from('hello')),
      frame(Buffer.alloc(0)),
      frame(Buffer.from('world!')),
    ]);
    for (let split = 1; split < stream.length; split++) {
      const reader = new FrameReader(64);
      const got = [
        ...reader.push(stream.subarray(0, split)),
        ...reader.push(stream.subarray(split)),
      ].map(String);
      expect(got).toEqual(['hello', '', 'world!']);
    }
  });

  it('feeds byte by byte', () => {
    const stream = frame(Buffer.from('abcdef'));
    const reader = new FrameReader(64);
    const got: string[] = [];
    for (const b of stream) got.push(...reader.push(Buffer.from([b])).map(String));
    expect(got).toEqual(['abcdef']);
  });

  it('refuses a frame over the limit', () => {
    const reader = new FrameReader(4);
    expect(() => reader.push(frame(Buffer.alloc(5)))).toThrow(/exceeds/);
  });
});
