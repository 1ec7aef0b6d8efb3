import { describe, expect, it } from 'vitest';
import type { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Extent } from '../journal/types.ts';
import { ALL_FEATURES, Feature, LIMITS } from './protocol.ts';
import { SegmentAssembler } from './segment-assembler.ts';
import { segmentFrames, type OutgoingSegment } from './segment-frames.ts';
import type { ChunkMsg, SegmentStartMsg, ShipFrameMsg } from './wire-types.ts';

const KiB = 1024;

function segment(seq: number): OutgoingSegment {
  const extents: Extent[] = [
    { disk: 0, offset: 0, length: 3000 * KiB, data: Buffer.alloc(3000 * KiB, `seg${seq}`) },
    { disk: 0, offset: 4000 * KiB, length: 64 * KiB, data: null },
    { disk: 1, offset: 512, length: 1536, data: Buffer.alloc(1536, 7) },
  ];
  return {
    vmId: 'vm',
    seq,
    point: { id: `vm-${seq}`, time: 5, type: 'app-consistent', segment: seq },
    extents,
  };
}

function frames(
  seg: OutgoingSegment,
  features = ALL_FEATURES,
  tamper?: (c: ChunkMsg, i: number) => void,
) {
  const ag = { protocol: 1, features };
  return {
    ag,
    frames: [
      ...segmentFrames(seg, ag, {
        compress: true,
        chunkBytes: 1024 * KiB,
        ...(tamper ? { tamperChunk: tamper } : {}),
      }),
    ],
  };
}

function assemble(list: ShipFrameMsg[], ag: { protocol: number; features: number }) {
  let a: SegmentAssembler | undefined;
  for (const f of list) {
    if ('start' in f) a = new SegmentAssembler(f.start as SegmentStartMsg, ag);
    else if ('chunk' in f) a!.addChunk(f.chunk);
    else if ('end' in f) return a!.finish(f.end);
  }
  throw new Error('no end');
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as SecondsiteError).code;
  }
  return undefined;
}

const flat = (extents: readonly Extent[]) => {
  const out: Array<[number, number, string]> = [];
  for (const e of extents) {
    const bytes = e.data ?? Buffer.alloc(e.length);
    for (let p = 0; p < e.length; p += 512)
      out.push([e.disk, e.offset + p, bytes.subarray(p, p + 512).toString('hex')]);
  }
  return out;
};

describe('SegmentAssembler', () => {
  it.each([
    ['every feature', ALL_FEATURES],
    ['no features (SHA-256, zeros as bytes, no zstd)', 0],
    ['BLAKE3 only', Feature.blake3],
  ])('reassembles what segmentFrames sent, with %s', (_n, features) => {
    const seg = segment(3);
    const { ag, frames: list } = frames(seg, features);
    const got = assemble(list, ag);
    expect(got.seq).toBe(3);
    expect(got.point).toEqual(seg.point);
    expect(flat(got.extents)).toEqual(flat(seg.extents));
  });

  const CRC_ONLY = ALL_FEATURES & ~Feature.chunkDigest;

  it.each([
    ['chunk digests', ALL_FEATURES],
    ['CRC-32', CRC_ONLY],
  ])('reports a corrupted chunk at the end as SS_CHECKSUM_MISMATCH (%s)', (_name, features) => {
    const { ag, frames: list } = frames(segment(1), features, (c, i) => {
      if (i !== 1) return;
      if (c.digest) c.digest = Buffer.from(c.digest.map((b, j) => (j === 0 ? b ^ 1 : b)));
      else c.crc32 = (c.crc32 + 1) >>> 0;
    });
    expect(codeOf(() => assemble(list, ag))).toBe('SS_CHECKSUM_MISMATCH');
  });

  it('assembles a segment checked by CRC-32 for a peer without chunk digests', () => {
    const seg = segment(2);
    const { ag, frames: list } = frames(seg, CRC_ONLY);
    expect(flat(assemble(list, ag).extents)).toEqual(flat(seg.extents));
  });

  it('refuses a wrong segment digest as SS_CHECKSUM_MISMATCH', () => {
    const { ag, frames: list } = frames(segment(1));
    const end = list.at(-1) as { end: { segmentDigest: Buffer } };
    end.end.segmentDigest = Buffer.alloc(32);
    expect(codeOf(() => assemble(list, ag))).toBe('SS_CHECKSUM_MISMATCH');
  });

  it('refuses a dropped chunk, an extra chunk and swapped chunks', () => {
    const { ag, frames: list } = frames(segment(1));
    const chunks = list.filter((f) => 'chunk' in f);
    const [start, end] = [list[0]!, list.at(-1)!];
    expect(codeOf(() => assemble([start, ...chunks.slice(1), end], ag))).toBe('SS_PROTOCOL');
    expect(codeOf(() => assemble([start, ...chunks, chunks[0]!, end], ag))).toBe('SS_PROTOCOL');
    expect(
      codeOf(() => assemble([start, chunks[1]!, chunks[0]!, ...chunks.slice(2), end], ag)),
    ).toBe('SS_PROTOCOL');
  });

  it('refuses a start that claims more than the limits', () => {
    const { ag, frames: list } = frames(segment(1));
    const start = {
      ...(list[0] as { start: SegmentStartMsg }).start,
      totalBytes: LIMITS.maxSegmentBytes + 1,
    };
    expect(codeOf(() => new SegmentAssembler(start, ag))).toBe('SS_PROTOCOL');
    expect(codeOf(() => new SegmentAssembler({ ...start, totalBytes: 1, seq: 0 }, ag))).toBe(
      'SS_PROTOCOL',
    );
    expect(codeOf(() => new SegmentAssembler({ ...start, totalBytes: 1, point: null }, ag))).toBe(
      'SS_PROTOCOL',
    );
  });
});
