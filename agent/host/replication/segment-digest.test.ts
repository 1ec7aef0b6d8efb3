import { describe, expect, it } from 'vitest';
import type { Extent } from '../journal/types.ts';
import { ALL_FEATURES, Feature } from './protocol.ts';
import { chunkDigestOf, createSegmentDigest } from './segment-digest.ts';

const PER_CHUNK = { protocol: 1, features: ALL_FEATURES };
const PER_BYTE = { protocol: 1, features: ALL_FEATURES & ~Feature.chunkDigest };

const bytes = Buffer.alloc(8192, 'segment');
const chunk: Extent[] = [
  { disk: 0, offset: 0, length: 4096, data: bytes.subarray(0, 4096) },
  { disk: 0, offset: 65536, length: 4096, data: null },
  { disk: 1, offset: 4096, length: 4096, data: bytes.subarray(4096) },
];

function digestOf(extents: Extent[], raw = bytes, seq = 7, agreement = PER_CHUNK): string {
  const d = createSegmentDigest(seq, agreement);
  d.addChunk(extents, chunkDigestOf(raw));
  return d.digest().toString('hex');
}

describe('segment digest over chunk digests', () => {
  it('changes with the seq, a moved extent, a zero flag or a changed byte', () => {
    const base = digestOf(chunk);
    expect(digestOf(chunk, bytes, 8)).not.toBe(base);
    expect(digestOf([chunk[0]!, { ...chunk[1]!, offset: 69632 }, chunk[2]!])).not.toBe(base);
    expect(digestOf([{ ...chunk[0]!, data: null }, chunk[1]!, chunk[2]!])).not.toBe(base);
    const changed = Buffer.from(bytes);
    changed[100]! ^= 1;
    expect(digestOf(chunk, changed)).not.toBe(base);
    expect(digestOf(chunk)).toBe(base);
  });

  it('needs each chunk digest once chunk digests were agreed', () => {
    expect(() => createSegmentDigest(1, PER_CHUNK).addChunk(chunk)).toThrow(/chunk digest/);
  });

  it('hashes the bytes themselves without the feature, whatever digest is passed', () => {
    const a = createSegmentDigest(7, PER_BYTE);
    a.addChunk(chunk);
    const b = createSegmentDigest(7, PER_BYTE);
    b.addChunk(chunk, chunkDigestOf(Buffer.alloc(1)));
    expect(a.digest().equals(b.digest())).toBe(true);
    expect(a.digest().toString('hex')).not.toBe(digestOf(chunk));
  });
});
