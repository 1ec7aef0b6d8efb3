/**
 * Writing extents onto the replica disks: apply step 3 and each resync batch's step 2.
 */
import type { Extent } from '../journal/types.ts';
import type { RawDisk } from '../vm/raw-disk.ts';

/** Writes every extent (zeros for data === null), then fsyncs the disks it touched. */
export function writeExtents(disks: readonly RawDisk[], extents: readonly Extent[]): void {
  const touched = new Set<number>();
  for (const e of extents) {
    const disk = disks[e.disk]!;
    if (e.data === null) disk.zeroSync(e.offset, e.length);
    else disk.writeSync(e.offset, e.data);
    touched.add(e.disk);
  }
  for (const d of touched) disks[d]!.syncSync();
}
