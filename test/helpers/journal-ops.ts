/**
 * A seeded stream of disk operations for the journal crash tests. The driver process performs
 * them; the test regenerates the same stream from the seed to know what was asked for.
 */
import { seededRandom } from './seeded-random.ts';

export type JournalTestOp =
  | { kind: 'write'; disk: number; offset: number; data: Buffer; fua: boolean }
  | { kind: 'trim' | 'zero'; disk: number; offset: number; length: number; fua: boolean }
  | { kind: 'flush'; disk: number }
  | { kind: 'cut' };

export const CRASH_DISK_SIZES = [4 << 20, 2 << 20] as const;

export function* journalTestOps(seed: number, count: number, diskSizes: readonly number[]) {
  const rnd = seededRandom(seed);
  for (let i = 0; i < count; i++) {
    const roll = rnd.int(100);
    const disk = rnd.int(diskSizes.length);
    const size = diskSizes[disk]!;
    // Mostly sector-aligned like a real guest, sometimes odd to exercise byte granularity.
    const unit = rnd.next() < 0.8 ? 512 : 1;
    const length = Math.min(rnd.range(1, (128 * 1024) / unit) * unit, size);
    const offset = Math.floor(rnd.int(size - length + 1) / unit) * unit;
    const fua = rnd.int(10) === 0;
    if (roll < 62)
      yield {
        kind: 'write',
        disk,
        offset,
        data: rnd.fill(Buffer.alloc(length)),
        fua,
      } as JournalTestOp;
    else if (roll < 72) yield { kind: 'trim', disk, offset, length, fua } as JournalTestOp;
    else if (roll < 82) yield { kind: 'zero', disk, offset, length, fua } as JournalTestOp;
    else if (roll < 96) yield { kind: 'flush', disk } as JournalTestOp;
    else yield { kind: 'cut' } as JournalTestOp;
  }
}

/** Applies an operation to in-memory disks (the model). */
export function applyToModel(disks: Buffer[], op: JournalTestOp): void {
  if (op.kind === 'write') op.data.copy(disks[op.disk]!, op.offset);
  else if (op.kind === 'trim' || op.kind === 'zero')
    disks[op.disk]!.fill(0, op.offset, op.offset + op.length);
}
