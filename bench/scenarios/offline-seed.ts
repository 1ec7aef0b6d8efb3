/**
 * Offline seed (issue 8, `offline-seed`): a 2 GiB disk (BENCH_BYTES shrinks it), 30% zero
 * chunks and mixed data. Ours: the product's offline export (exportVmOffline: read through the
 * VM's journal after a cut, BLAKE3 per 1 MiB chunk, zero chunks left as holes, images fsynced,
 * manifest) into a folder, then the import of that folder into a replica image
 * (importVmOffline: every digest verified, then written and fsynced), the single-server case
 * where export and import paths are the same folder. Timed from the export's start to the
 * import's end.
 * Baseline, same run, interleaved: `cp` of the same image file, then `sync` (our export and
 * import fsync what they write). Both read a source the page cache may hold.
 */
import { mkdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../common/log/log.ts';
import { systemClock } from '../../common/time/clock.ts';
import { openVmJournal } from '../../agent/host/journal/vm-journal.ts';
import { exportVmOffline } from '../../agent/host/sync/offline-export.ts';
import { importVmOffline } from '../../agent/host/sync/offline-import.ts';
import { RawDisk } from '../../agent/host/vm/raw-disk.ts';
import { median, result, type Scenario } from '../harness.ts';
import { timed } from '../processes.ts';
import { benchBytes, seconds, writeMixedImage } from '../replica-process.ts';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);

/** One export + import of `image` under `roundDir`; seconds and bytes written each way. */
async function ours(
  roundDir: string,
  image: string,
  size: number,
): Promise<{ s: number; exported: number; imported: number; verified: number }> {
  const source = RawDisk.open(image);
  const journal = await openVmJournal({
    dir: join(roundDir, 'journal'),
    vmId: 'bench',
    disks: [source],
    capBytes: 64 * GiB,
    clock: systemClock,
    log: silentLogger,
  });
  const folder = join(roundDir, 'seed');
  const replicaDir = join(roundDir, 'replica');
  mkdirSync(replicaDir, { recursive: true });
  const replicaImage = join(replicaDir, 'disk0.raw');
  writeFileSync(replicaImage, '');
  truncateSync(replicaImage, size);
  const replica = RawDisk.open(replicaImage);
  try {
    const t0 = process.hrtime.bigint();
    const exp = await exportVmOffline({
      vm: 'bench',
      exportId: 'seed1',
      epoch: 1,
      path: folder,
      vmDir: join(roundDir, 'source-vm'),
      journal,
      diskSizes: [size],
      now: () => Date.now(),
      log: silentLogger,
    });
    const imp = await importVmOffline({
      vm: 'bench',
      path: folder,
      exportId: 'seed1',
      vmDir: replicaDir,
      disks: [replica],
      diskPaths: [replicaImage],
      store: { rebase: async () => undefined },
      log: silentLogger,
    });
    return {
      s: seconds(t0),
      exported: exp.bytesWritten,
      imported: imp.bytesWritten,
      verified: imp.bytesVerified,
    };
  } finally {
    await journal.close();
    await replica.close();
  }
}

export const offlineSeed: Scenario = {
  name: 'offline-seed',
  description: 'offline export + import of a 2 GiB disk (30% zero), vs cp of the same file',
  async run({ dir, say }) {
    const size = benchBytes(2 * GiB);
    const image = join(dir, 'source.raw');
    writeMixedImage(image, size, 0.3);
    const times = { ours: [] as number[], cp: [] as number[] };
    let last = { exported: 0, imported: 0, verified: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      const roundDir = join(dir, `round-${round}`);
      mkdirSync(join(roundDir, 'source-vm'), { recursive: true });
      await timed('sync', []);
      const r = await ours(roundDir, image, size);
      times.ours.push(r.s);
      last = r;
      rmSync(roundDir, { recursive: true, force: true });
      await timed('sync', []);
      const copy = join(dir, `copy-${round}.raw`);
      times.cp.push((await timed('cp', [image, copy])) + (await timed('sync', [])));
      rmSync(copy, { force: true });
      say(
        `round ${round + 1}: export+import ${times.ours.at(-1)!.toFixed(2)} s ` +
          `(${(r.exported / MiB).toFixed(0)} MiB exported, ${(r.imported / MiB).toFixed(0)} MiB ` +
          `imported), cp+sync ${times.cp.at(-1)!.toFixed(2)} s`,
      );
    }
    return [
      result(
        'offline-seed',
        's',
        'lower-is-better',
        median(times.ours),
        median(times.cp),
        'cp + sync',
        `median of ${ROUNDS}; ${(size / GiB).toFixed(2)} GiB, 30% zero chunks; ours = export ` +
          `(${(last.exported / MiB).toFixed(0)} MiB written, zero chunks as holes, BLAKE3 ` +
          `manifest) + import (${(last.verified / MiB).toFixed(0)} MiB verified, ` +
          `${(last.imported / MiB).toFixed(0)} MiB written), both fsynced; cp reads the whole file`,
      ),
    ];
  },
};
