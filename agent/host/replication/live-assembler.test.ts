import { describe, expect, it } from 'vitest';
import type { SecondsiteError } from '../../../common/errors/errors.ts';
import { seededRandom } from '../../../test/helpers/seeded-random.ts';
import type { Extent, RecoveryPointRecord } from '../journal/types.ts';
import { LiveSegmentAssembler } from './live-assembler.ts';
import { liveSegmentFrames, type LiveBatch } from './live-frames.ts';
import { ALL_FEATURES, Feature, LIMITS } from './protocol.ts';
import type { ChunkMsg, SegmentStartMsg, ShipFrameMsg } from './wire-types.ts';

const DISK = 256 * 1024;
const point = (seq: number): RecoveryPointRecord => ({
  id: `p-${seq}`,
  time: 1,
  type: 'crash-consistent',
  segment: seq,
});

/** Random writes (some zeros, some repeats of one range) in batches, as a journal gives them. */
function writes(seed: number, batches: number): Extent[][] {
  const rnd = seededRandom(seed);
  return Array.from({ length: batches }, () =>
    Array.from({ length: 1 + rnd.int(6) }, (): Extent => {
      const disk = rnd.int(2);
      const length = 1 + rnd.int(20_000);
      const offset = rnd.int(DISK - length);
      if (rnd.int(5) === 0) return { disk, offset, length, data: null };
      const data = rnd.int(7) === 0 ? Buffer.alloc(length) : rnd.fill(Buffer.alloc(length));
      return { disk, offset, length, data };
    }),
  );
}

async function framesOf(
  seq: number,
  batches: Extent[][],
  features = ALL_FEATURES,
  tamper?: (c: ChunkMsg, i: number) => void,
): Promise<ShipFrameMsg[]> {
  async function* source(): AsyncGenerator<LiveBatch> {
    for (const extents of batches) yield { extents };
    yield { extents: [], point: point(seq) };
  }
  const out: ShipFrameMsg[] = [];
  const opts = {
    chunkBytes: 16 * 1024,
    compress: true,
    ...(tamper ? { tamperChunk: tamper } : {}),
  };
  for await (const f of liveSegmentFrames(
    { vmId: 'vm', seq },
    source(),
    { protocol: 1, features },
    opts,
  )) {
    out.push(f);
  }
  return out;
}

async function assemble(list: ShipFrameMsg[], compactFloor = 64 * 1024) {
  const ag = { protocol: 1, features: ALL_FEATURES };
  let a: LiveSegmentAssembler | undefined;
  const fresh: Extent[] = [];
  for (const f of list) {
    if ('start' in f)
      a = new LiveSegmentAssembler(f.start as SegmentStartMsg, ag, LIMITS, compactFloor);
    else if ('chunk' in f) fresh.push(...(await a!.addChunk(f.chunk)));
    else if ('end' in f) return { seg: a!.finish(f.end), fresh, assembler: a! };
  }
  throw new Error('no end');
}

function model(batches: Extent[][]): Buffer[] {
  const disks = [Buffer.alloc(DISK, 0xee), Buffer.alloc(DISK, 0xee)];
  for (const e of batches.flat()) {
    if (e.data) e.data.copy(disks[e.disk]!, e.offset);
    else disks[e.disk]!.fill(0, e.offset, e.offset + e.length);
  }
  return disks;
}

async function codeOf(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn();
  } catch (e) {
    return (e as SecondsiteError).code;
  }
  return undefined;
}

describe('live segments (FEATURE_LIVE_SEGMENTS)', () => {
  it('arrive in write order and leave coalesced: the last write wins, as on the primary', async () => {
    const seed = Number(process.env['SEED'] ?? Date.now() % 1e9);
    console.log(`live assembler: SEED=${seed}`);
    const batches = writes(seed, 60);
    const { seg, fresh, assembler } = await assemble(await framesOf(3, batches));
    expect(seg.seq).toBe(3);
    expect(seg.point).toEqual(point(3));
    expect(assembler.compactions).toBeGreaterThan(0); // the held bytes were compacted
    const disks = [Buffer.alloc(DISK, 0xee), Buffer.alloc(DISK, 0xee)];
    let prev: Extent | undefined;
    for (const e of seg.extents) {
      // Sorted, never overlapping: what the recovery store's check demands.
      if (prev && prev.disk === e.disk)
        expect(e.offset).toBeGreaterThanOrEqual(prev.offset + prev.length);
      if (prev) expect(e.disk).toBeGreaterThanOrEqual(prev.disk);
      prev = e;
      if (e.data) e.data.copy(disks[e.disk]!, e.offset);
      else disks[e.disk]!.fill(0, e.offset, e.offset + e.length);
    }
    const want = model(batches);
    expect(disks[0]!.equals(want[0]!)).toBe(true);
    expect(disks[1]!.equals(want[1]!)).toBe(true);
    // The ranges handed to undo staging: each touched byte exactly once.
    for (const d of [0, 1]) {
      const seen = new Uint8Array(DISK);
      for (const e of fresh.filter((x) => x.disk === d)) {
        for (let b = e.offset; b < e.offset + e.length; b++) {
          expect(seen[b]).toBe(0);
          seen[b] = 1;
        }
      }
      const touched = new Uint8Array(DISK);
      for (const e of batches.flat().filter((x) => x.disk === d))
        touched.fill(1, e.offset, e.offset + e.length);
      expect(Buffer.from(seen).equals(Buffer.from(touched))).toBe(true);
    }
  });

  it('refuses a segment with a damaged chunk at its end, so that it is sent again', async () => {
    let tampered = false;
    const list = await framesOf(1, writes(7, 10), ALL_FEATURES, (c, i) => {
      if (i < 2 || tampered || c.payload.length < 10) return;
      c.payload = Buffer.from(c.payload);
      c.payload[5] = c.payload[5]! ^ 0xff;
      tampered = true;
    });
    expect(tampered).toBe(true);
    expect(await codeOf(() => assemble(list))).toBe('SS_CHECKSUM_MISMATCH');
  });

  it('refuses a digest that does not match, an end without a point, and an unagreed feature', async () => {
    const list = await framesOf(2, writes(8, 5));
    const end = list.at(-1)! as { end: { segmentDigest: Buffer } };
    const badDigest = [
      ...list.slice(0, -1),
      { end: { ...end.end, segmentDigest: Buffer.alloc(32) } },
    ];
    expect(await codeOf(() => assemble(badDigest))).toBe('SS_CHECKSUM_MISMATCH');
    const noPoint = [
      ...list.slice(0, -1),
      { end: { segmentDigest: end.end.segmentDigest, point: null } },
    ];
    expect(await codeOf(() => assemble(noPoint))).toBe('SS_PROTOCOL');
    const start = (list[0] as { start: SegmentStartMsg }).start;
    const without = { protocol: 1, features: ALL_FEATURES & ~Feature.liveSegments };
    expect(await codeOf(() => new LiveSegmentAssembler(start, without))).toBe('SS_PROTOCOL');
    await expect(framesOf(2, [], without.features)).rejects.toMatchObject({ code: 'SS_INTERNAL' });
  });
});
