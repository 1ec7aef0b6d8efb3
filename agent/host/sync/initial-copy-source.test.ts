import { describe, expect, it } from 'vitest';
import { ChunkBuffers } from './initial-copy-source.ts';

describe('ChunkBuffers (the initial copy source reads into kept memory)', () => {
  it('hands a buffer out again only after a view of it was given back', () => {
    const pool = new ChunkBuffers();
    const a = pool.take(1024);
    const b = pool.take(512);
    expect(a.buffer).not.toBe(b.buffer); // both out: two buffers
    pool.give(a.subarray(100, 200)); // a view of `a` gives all of it back
    const c = pool.take(1024);
    expect(c.buffer).toBe(a.buffer);
    expect(c.buffer).not.toBe(b.buffer); // `b` is still out
  });

  it('ignores memory it did not hand out, gives nothing back twice, and grows for longer reads', () => {
    const pool = new ChunkBuffers();
    const a = pool.take(256);
    pool.give(Buffer.alloc(256)); // not the pool's
    pool.give(a);
    pool.give(a); // the second give of the same buffer changes nothing
    const x = pool.take(256);
    const y = pool.take(256);
    expect(x.buffer).toBe(a.buffer);
    expect(y.buffer).not.toBe(a.buffer);
    pool.give(x);
    expect(pool.take(4096).buffer).not.toBe(a.buffer); // too small for this read: a new one
  });
});
