/**
 * Segments for replication tests: seeded extents of every shape the wire must carry (small
 * writes, a write longer than a chunk, zero ranges, compressible and random bytes), and a
 * way to compare what arrived with what was sent independently of how it was split.
 */
import type { Extent } from '../../agent/host/journal/types.ts';
import type { OutgoingSegment } from '../../agent/host/replication/segment-frames.ts';
import { seededRandom } from './seeded-random.ts';

export const DISK_SIZES = [64 << 20, 16 << 20] as const;

export function makeSegment(vmId: string, seq: number, seed: number): OutgoingSegment {
  const rnd = seededRandom(seed);
  const extents: Extent[] = [];
  let offset = 0;
  // Disk 0: 40 small writes, half compressible text, half random; a few zero ranges.
  for (let i = 0; i < 40; i++) {
    const length = rnd.range(1, 64) * 512;
    const kind = rnd.int(3);
    const data =
      kind === 0
        ? null
        : kind === 1
          ? Buffer.alloc(length, `block ${seq}/${i} `)
          : rnd.fill(Buffer.alloc(length));
    extents.push({ disk: 0, offset, length, data });
    offset += length + rnd.range(0, 8) * 512;
  }
  // Disk 1: one write of 9 MiB (split over three chunks), then a 1 MiB zero range.
  extents.push({ disk: 1, offset: 4096, length: 9 << 20, data: rnd.fill(Buffer.alloc(9 << 20)) });
  extents.push({ disk: 1, offset: (9 << 20) + 8192, length: 1 << 20, data: null });
  return {
    vmId,
    seq,
    point: {
      id: `${vmId}-${seq}`,
      time: 1_700_000_000_000 + seq,
      type: 'crash-consistent',
      segment: seq,
    },
    extents,
  };
}

/** Disk images after applying `extents` to zeroed disks: equal images = equal contents. */
export function materialize(
  extents: readonly Extent[],
  sizes: readonly number[] = DISK_SIZES,
): Buffer[] {
  const disks = sizes.map((s) => Buffer.alloc(s));
  for (const e of extents) {
    const d = disks[e.disk]!;
    if (e.data === null) d.fill(0, e.offset, e.offset + e.length);
    else e.data.copy(d, e.offset);
  }
  return disks;
}
