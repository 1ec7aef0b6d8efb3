/**
 * The workload's reproducible block contents. A block is fully determined by (seed, disk,
 * offset, generation), and carries those in a 32-byte header, so any copy of a disk (a replica,
 * a recovered point) can be checked block by block without the writer's memory:
 *
 *   0..8   magic "SSWKLD01"
 *   8..12  seed (uint32, big-endian)
 *   12..16 disk index
 *   16..24 byte offset of the block (uint64)
 *   24..28 generation (1 for the first write of this block, +1 per rewrite)
 *   28..32 block length
 *   32..   xorshift32 stream seeded from the four values above
 *
 * Generating is a tight loop over 32-bit words; measured well above the rates a workload asks
 * for, so the pattern never limits the write path.
 */
import { isAllZero } from '../../common/bytes/all-zero.ts';

export const PATTERN_MAGIC = Buffer.from('SSWKLD01', 'latin1');
export const HEADER_BYTES = 32;

export interface BlockId {
  readonly seed: number;
  readonly disk: number;
  readonly offset: number;
  readonly generation: number;
}

/** A 32-bit mix of the block's identity (never 0: xorshift's fixed point). */
function streamSeed(id: BlockId, length: number): number {
  let h = 0x811c9dc5;
  for (const v of [
    id.seed,
    id.disk,
    id.offset % 2 ** 32,
    Math.floor(id.offset / 2 ** 32),
    id.generation,
    length,
  ]) {
    h = Math.imul(h ^ (v >>> 0), 0x01000193) >>> 0;
    h = (h ^ (h >>> 15)) >>> 0;
  }
  return h === 0 ? 0x9e3779b9 : h;
}

/** Fills `into` (length a multiple of 4, at least HEADER_BYTES) with the block's contents. */
export function fillBlock(into: Buffer, id: BlockId): Buffer {
  PATTERN_MAGIC.copy(into, 0);
  into.writeUInt32BE(id.seed >>> 0, 8);
  into.writeUInt32BE(id.disk, 12);
  into.writeBigUInt64BE(BigInt(id.offset), 16);
  into.writeUInt32BE(id.generation, 24);
  into.writeUInt32BE(into.length, 28);
  const words = new Uint32Array(
    into.buffer,
    into.byteOffset + HEADER_BYTES,
    (into.length - HEADER_BYTES) >>> 2,
  );
  let x = streamSeed(id, into.length);
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  return into;
}

/** A buffer whose memory is 4-byte aligned, as fillBlock's word view needs. */
export function blockBuffer(length: number): Buffer {
  return Buffer.from(new ArrayBuffer(length));
}

export type BlockCheck =
  { kind: 'zero' } | { kind: 'pattern'; generation: number } | { kind: 'bad'; reason: string };

/**
 * What a block read back is: all zeros (never written), a self-consistent pattern block of
 * this seed/disk/offset (and which generation), or anything else (with the reason).
 */
export function checkBlock(data: Buffer, expect: Omit<BlockId, 'generation'>): BlockCheck {
  if (!data.subarray(0, PATTERN_MAGIC.length).equals(PATTERN_MAGIC)) {
    return isAllZero(data) ? { kind: 'zero' } : { kind: 'bad', reason: 'no pattern header' };
  }
  if (data.readUInt32BE(8) !== expect.seed >>> 0) return { kind: 'bad', reason: 'another seed' };
  if (data.readUInt32BE(12) !== expect.disk) return { kind: 'bad', reason: 'another disk' };
  if (data.readBigUInt64BE(16) !== BigInt(expect.offset)) {
    return { kind: 'bad', reason: `block of offset ${data.readBigUInt64BE(16)} found here` };
  }
  if (data.readUInt32BE(28) !== data.length) return { kind: 'bad', reason: 'another block size' };
  const generation = data.readUInt32BE(24);
  const want = fillBlock(blockBuffer(data.length), { ...expect, generation });
  return want.equals(data)
    ? { kind: 'pattern', generation }
    : { kind: 'bad', reason: 'torn or corrupt body' };
}

/** mulberry32: the workload's seeded choice of blocks, reproducible from --seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
