import { describe, expect, it } from 'vitest';
import type { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Extent } from '../journal/types.ts';
import { decodeChunk, encodeChunk, rawBytesOf } from './chunk-codec.ts';
import { planChunks } from './chunk-plan.ts';
import { ALL_FEATURES, Feature, LIMITS } from './protocol.ts';
import { chunkDigestOf } from './segment-digest.ts';

const ALL = { protocol: 1, features: ALL_FEATURES };
const CRC = { protocol: 1, features: ALL_FEATURES & ~Feature.chunkDigest };
const KiB = 1024;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as SecondsiteError).code;
  }
  return undefined;
}

const data = (n: number, seed = 1): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
};

describe('planChunks', () => {
  it('splits long extents at the byte limit and never copies', () => {
    const big = data(10 * KiB);
    const plans = [
      ...planChunks([{ disk: 0, offset: 100, length: big.length, data: big }], {
        maxRawBytes: 4 * KiB,
        maxExtents: 10,
        zeroRanges: true,
      }),
    ];
    expect(plans.map((p) => p.rawLength)).toEqual([4 * KiB, 4 * KiB, 2 * KiB]);
    expect(plans.map((p) => p.extents[0]!.offset)).toEqual([100, 100 + 4 * KiB, 100 + 8 * KiB]);
    expect(plans[1]!.extents[0]!.data!.buffer).toBe(big.buffer);
  });

  it('carries zero ranges without bytes, or as zeros when the peer lacks the feature', () => {
    const zero: Extent = { disk: 1, offset: 0, length: 6 * KiB, data: null };
    const opts = { maxRawBytes: 4 * KiB, maxExtents: 10 };
    const withRanges = [...planChunks([zero], { ...opts, zeroRanges: true })];
    expect(withRanges).toEqual([{ extents: [zero], rawLength: 0 }]);
    const without = [...planChunks([zero], { ...opts, zeroRanges: false })];
    expect(without.map((p) => p.rawLength)).toEqual([4 * KiB, 2 * KiB]);
    expect(without.every((p) => p.extents.every((e) => e.data!.every((b) => b === 0)))).toBe(true);
  });

  it('starts a new chunk at the extent limit', () => {
    const many = Array.from({ length: 5 }, (_, i): Extent => ({
      disk: 0,
      offset: i * 10,
      length: 1,
      data: null,
    }));
    const plans = [...planChunks(many, { maxRawBytes: KiB, maxExtents: 2, zeroRanges: true })];
    expect(plans.map((p) => p.extents.length)).toEqual([2, 2, 1]);
  });
});

describe('chunk encode and decode', () => {
  const extents: Extent[] = [
    { disk: 0, offset: 0, length: 8 * KiB, data: Buffer.alloc(8 * KiB, 'abc') },
    { disk: 0, offset: 16 * KiB, length: 4 * KiB, data: null },
    { disk: 1, offset: 512, length: 3 * KiB, data: data(3 * KiB) },
  ];
  const plan = { extents, rawLength: 11 * KiB };

  it('round-trips raw and zstd chunks to the same extents', () => {
    for (const zstd of [false, true]) {
      const msg = encodeChunk(plan, { zstd, digest: true });
      expect(msg.compression).toBe(zstd ? 'COMPRESSION_ZSTD' : 'COMPRESSION_NONE');
      expect(decodeChunk(msg, ALL)).toEqual(extents);
    }
  });

  it('sends incompressible bytes raw even when compression is asked for', () => {
    const noise = Buffer.from(Array.from({ length: 4096 }, () => Math.floor(Math.random() * 256)));
    const msg = encodeChunk(
      { extents: [{ disk: 0, offset: 0, length: 4096, data: noise }], rawLength: 4096 },
      { zstd: true, digest: true },
    );
    expect(msg.compression).toBe('COMPRESSION_NONE');
  });

  it('refuses a flipped byte as SS_CHECKSUM_MISMATCH, raw or compressed', () => {
    const raw = encodeChunk(plan, { zstd: false, digest: true });
    raw.payload = Buffer.from(raw.payload);
    raw.payload[5]! ^= 1;
    expect(codeOf(() => decodeChunk(raw, ALL))).toBe('SS_CHECKSUM_MISMATCH');
    const packed = encodeChunk(plan, { zstd: true, digest: true });
    packed.digest = Buffer.from(packed.digest!);
    packed.digest[0]! ^= 1;
    expect(codeOf(() => decodeChunk(packed, ALL))).toBe('SS_CHECKSUM_MISMATCH');
  });

  it('checks a CRC-32 instead when the peer has no chunk digests', () => {
    const msg = encodeChunk(plan, { zstd: false, digest: false });
    expect(msg.digest).toBeUndefined();
    expect(decodeChunk(msg, CRC)).toEqual(extents);
    msg.payload = Buffer.from(msg.payload);
    msg.payload[5]! ^= 1;
    expect(codeOf(() => decodeChunk(msg, CRC))).toBe('SS_CHECKSUM_MISMATCH');
  });

  it('carries the BLAKE3 of the raw bytes as the digest, and no CRC', () => {
    const msg = encodeChunk(plan, { zstd: true, digest: true });
    expect(msg.crc32).toBe(0);
    expect(msg.digest).toEqual(chunkDigestOf(rawBytesOf(plan)));
  });

  it('refuses a chunk without a 32-byte digest once chunk digests were agreed', () => {
    const crcOnly = encodeChunk(plan, { zstd: false, digest: false });
    expect(codeOf(() => decodeChunk(crcOnly, ALL))).toBe('SS_PROTOCOL');
    const short = encodeChunk(plan, { zstd: false, digest: true });
    short.digest = short.digest!.subarray(0, 16);
    expect(codeOf(() => decodeChunk(short, ALL))).toBe('SS_PROTOCOL');
  });

  it.each([
    [
      'too many extents',
      (m: ReturnType<typeof encodeChunk>) =>
        void (m.extents = Array(LIMITS.maxChunkExtents + 1).fill(m.extents[0])),
    ],
    [
      'raw length over the limit',
      (m: ReturnType<typeof encodeChunk>) => void (m.rawLength = LIMITS.maxChunkRawBytes + 1),
    ],
    [
      'raw length not matching the payload',
      (m: ReturnType<typeof encodeChunk>) => void (m.rawLength -= 1),
    ],
    [
      'extents claiming more bytes',
      (m: ReturnType<typeof encodeChunk>) => void (m.extents[0]!.length = 9 * KiB),
    ],
    ['an empty extent', (m: ReturnType<typeof encodeChunk>) => void (m.extents[1]!.length = 0)],
    [
      'an unsafe offset',
      (m: ReturnType<typeof encodeChunk>) => void (m.extents[0]!.offset = '18446744073709551615'),
    ],
    [
      'no compression named',
      (m: ReturnType<typeof encodeChunk>) => void (m.compression = 'COMPRESSION_UNSPECIFIED'),
    ],
    ['no extents', (m: ReturnType<typeof encodeChunk>) => void (m.extents = [])],
  ])('refuses %s as SS_PROTOCOL', (_name, spoil) => {
    const msg = encodeChunk(plan, { zstd: false, digest: true });
    spoil(msg);
    expect(codeOf(() => decodeChunk(msg, ALL))).toBe('SS_PROTOCOL');
  });

  it('refuses features that were not agreed', () => {
    const packed = encodeChunk(plan, { zstd: true, digest: true });
    expect(codeOf(() => decodeChunk(packed, { protocol: 1, features: Feature.zeroRanges }))).toBe(
      'SS_PROTOCOL',
    );
    const raw = encodeChunk(plan, { zstd: false, digest: true });
    expect(codeOf(() => decodeChunk(raw, { protocol: 1, features: Feature.zstd }))).toBe(
      'SS_PROTOCOL',
    );
  });

  it('refuses garbage declared as zstd', () => {
    const msg = encodeChunk(plan, { zstd: true, digest: true });
    msg.payload = Buffer.from('definitely not zstd');
    expect(codeOf(() => decodeChunk(msg, ALL))).toBe('SS_PROTOCOL');
  });
});

describe('rawBytesOf', () => {
  const plan = (parts: Buffer[]) => ({
    extents: parts.map((d, i) => ({ disk: 0, offset: i * 8 * KiB, length: d.length, data: d })),
    rawLength: parts.reduce((n, d) => n + d.length, 0),
  });

  it('views back-to-back parts of one memory block without a copy', () => {
    const block = data(12 * KiB);
    const parts = [block.subarray(0, 4 * KiB), block.subarray(4 * KiB, 12 * KiB)];
    const raw = rawBytesOf(plan(parts));
    expect(raw.equals(block)).toBe(true);
    expect(raw.buffer).toBe(block.buffer);
    expect(raw.byteOffset).toBe(block.byteOffset);
  });

  it('concatenates parts with a gap, out of order, or from different blocks', () => {
    const block = data(12 * KiB);
    const gap = [block.subarray(0, 4 * KiB), block.subarray(5 * KiB, 12 * KiB)];
    const swapped = [block.subarray(4 * KiB, 8 * KiB), block.subarray(0, 4 * KiB)];
    const apart = [data(4 * KiB, 2), data(4 * KiB, 3)];
    for (const parts of [gap, swapped, apart]) {
      const raw = rawBytesOf(plan(parts));
      expect(raw.equals(Buffer.concat(parts))).toBe(true);
      // A copy: changing the source afterwards does not change the chunk.
      const before = Buffer.from(raw);
      parts[0]!.fill(0xee);
      expect(raw.equals(before)).toBe(true);
    }
  });
});
