/**
 * Which blocks of a test-failover overlay hold the test VM's data, which read as zeros
 * (discarded or zero-written), and which still read from the recovery point. Pure
 * bookkeeping: test-view.ts does the I/O.
 *
 * Memory: one bit per block per state, in chunks allocated on first use, so an overlay costs
 * nothing until the test VM writes, whatever the disk size, and at most 2 bits per 4 KiB
 * (64 KiB per GiB) once it has written everywhere. A chunk covers CHUNK_BLOCKS blocks
 * (128 MiB of disk at 4 KiB blocks) in a 4 KiB bitmap.
 */

const CHUNK_BLOCKS = 1 << 15;
const WORDS = CHUNK_BLOCKS / 32;

export type BlockState = 'point' | 'data' | 'zero';

/** A sparse bitset of block numbers. */
class SparseBits {
  private readonly chunks = new Map<number, Uint32Array>();

  has(block: number): boolean {
    const chunk = this.chunks.get(Math.floor(block / CHUNK_BLOCKS));
    if (chunk === undefined) return false;
    const bit = block % CHUNK_BLOCKS;
    return ((chunk[bit >>> 5]! >>> (bit & 31)) & 1) === 1;
  }

  set(block: number, on: boolean): void {
    const key = Math.floor(block / CHUNK_BLOCKS);
    let chunk = this.chunks.get(key);
    if (chunk === undefined) {
      if (!on) return;
      chunk = new Uint32Array(WORDS);
      this.chunks.set(key, chunk);
    }
    const bit = block % CHUNK_BLOCKS;
    if (on) chunk[bit >>> 5] = chunk[bit >>> 5]! | (1 << (bit & 31));
    else chunk[bit >>> 5] = chunk[bit >>> 5]! & ~(1 << (bit & 31));
  }

  /** Bytes of bitmap allocated. */
  get bytes(): number {
    return this.chunks.size * WORDS * 4;
  }

  /** Every set block, ascending. */
  *blocks(): Generator<number> {
    for (const key of [...this.chunks.keys()].sort((a, b) => a - b)) {
      const chunk = this.chunks.get(key)!;
      for (let w = 0; w < WORDS; w++) {
        const word = chunk[w]!;
        if (word === 0) continue;
        for (let bit = 0; bit < 32; bit++) {
          if ((word >>> bit) & 1) yield key * CHUNK_BLOCKS + w * 32 + bit;
        }
      }
    }
  }
}

/** A run of blocks [first, last] in one state. */
export interface BlockRun {
  readonly first: number;
  readonly last: number;
  readonly state: BlockState;
}

export class OverlayBlocks {
  private readonly data = new SparseBits();
  private readonly zero = new SparseBits();

  constructor(readonly blockSize: number) {}

  state(block: number): BlockState {
    if (this.data.has(block)) return 'data';
    return this.zero.has(block) ? 'zero' : 'point';
  }

  /** The block's bytes are now in the overlay file. */
  markData(block: number): void {
    this.data.set(block, true);
    this.zero.set(block, false);
  }

  /** The whole block reads as zeros from now on (whatever the overlay file holds there). */
  markZero(block: number): void {
    this.zero.set(block, true);
    this.data.set(block, false);
  }

  /** Blocks first..last as runs of equal state, in order. */
  runs(first: number, last: number): BlockRun[] {
    const out: BlockRun[] = [];
    let start = first;
    let state = this.state(first);
    for (let b = first + 1; b <= last; b++) {
      const s = this.state(b);
      if (s === state) continue;
      out.push({ first: start, last: b - 1, state });
      start = b;
      state = s;
    }
    out.push({ first: start, last, state });
    return out;
  }

  /** The blocks that are not 'point' any more, as runs of equal state in block order. */
  changedRuns(): BlockRun[] {
    const all: Array<readonly [number, 'data' | 'zero']> = [...this.data.blocks()].map(
      (b) => [b, 'data'] as const,
    );
    all.push(...[...this.zero.blocks()].map((b) => [b, 'zero'] as const));
    all.sort((x, y) => x[0] - y[0]);
    const out: BlockRun[] = [];
    for (const [b, state] of all) {
      const last = out.at(-1);
      if (last && last.state === state && last.last === b - 1) {
        out[out.length - 1] = { ...last, last: b };
      } else out.push({ first: b, last: b, state });
    }
    return out;
  }

  get bitmapBytes(): number {
    return this.data.bytes + this.zero.bytes;
  }
}
