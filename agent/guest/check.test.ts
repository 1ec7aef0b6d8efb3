import { describe, expect, it } from 'vitest';
import type { NbdClient } from '../../common/nbd/client.ts';
import { checkDisks } from './check.ts';
import { blockBuffer, fillBlock } from './pattern.ts';

const BS = 4096;

/** Just enough of an NbdClient over a buffer. */
function diskOf(data: Buffer): NbdClient {
  return {
    size: data.length,
    read: async (off: number, len: number) => Buffer.from(data.subarray(off, off + len)),
  } as unknown as NbdClient;
}

describe('checkDisks', () => {
  it('classifies zero, pattern, foreign and bad blocks', async () => {
    const disk = Buffer.alloc(8 * BS);
    fillBlock(blockBuffer(BS), { seed: 9, disk: 0, offset: BS, generation: 2 }).copy(disk, BS);
    disk.fill(0xab, 2 * BS, 3 * BS); // qemu-io's data: foreign, not an error
    fillBlock(blockBuffer(BS), { seed: 9, disk: 0, offset: 0, generation: 1 }).copy(disk, 3 * BS); // misplaced
    const torn = fillBlock(blockBuffer(BS), { seed: 9, disk: 0, offset: 4 * BS, generation: 1 });
    torn.fill(0, 2048);
    torn.copy(disk, 4 * BS);
    const r = await checkDisks([diskOf(disk)], 9, BS);
    expect(r).toMatchObject({ blocks: 8, zero: 4, pattern: 1, foreign: 1, bad: 2 });
    expect(r.badBlocks).toEqual([
      `disk 0 offset ${3 * BS}: block of offset 0 found here`,
      `disk 0 offset ${4 * BS}: torn or corrupt body`,
    ]);
  });
});
