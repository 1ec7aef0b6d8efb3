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

  it('stops after maxFrames and hands back the bytes after them unparsed', () => {
    const first = frame(Buffer.from('hello'));
    const after = Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]); // not a valid frame here
    for (let split = 1; split <= first.length + after.length; split++) {
      const stream = Buffer.concat([first, after]);
      const reader = new FrameReader(64);
      // As a handshake reads: stop pushing once the frame is out.
      let got = reader.push(stream.subarray(0, split), 1);
      if (got.length === 0) got = reader.push(stream.subarray(split), 1);
      else reader.push(stream.subarray(split), 0);
      expect(got.map(String)).toEqual(['hello']);
      expect(Buffer.concat(reader.remaining()).equals(after)).toBe(true);
    }
  });
});
