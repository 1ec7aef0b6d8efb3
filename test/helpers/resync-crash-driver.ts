/**
 * Child process for the resync crash test (test/component/resync-crash.test.ts): opens the
 * replica (the store repairs whatever the previous kill left), then runs the resync from the
 * source images, printing `batch <n>` after each durable batch and `done` at the end. The test
 * SIGKILLs it at random moments.
 *
 * The source side here is a stand-in for the VM journal over the (closed, quiet) source
 * images: the same base point at every attempt, as a source restarting mid-resync would have
 * (runResyncSource keeps it in resync-source.json). Between engines: the in-process loopback.
 *
 * Usage: node bin/run-ts.mjs test/helpers/resync-crash-driver.ts '<json>' with
 * { dir, sizes, chunk, baseSeq }.
 */
import { join } from 'node:path';
import { silentLogger } from '../../common/log/log.ts';
import type { RecoveryPointRecord } from '../../agent/host/journal/types.ts';
import { runResyncSource, type ResyncJournal } from '../../agent/host/sync/resync-source.ts';
import { ResyncTarget } from '../../agent/host/sync/resync-target.ts';
import { RawDisk } from '../../agent/host/vm/raw-disk.ts';
import { LoopbackPeer, openReplica } from './sync-lab.ts';

interface DriverArgs {
  dir: string;
  sizes: number[];
  chunk: number;
  baseSeq: number;
}

/** The quiet source: its disks never change, and every cut is the base point. */
export function quietSource(dir: string, sizes: readonly number[], baseSeq: number): ResyncJournal {
  const disks = sizes.map((_, i) => RawDisk.open(join(dir, `src${i}.img`)));
  const point: RecoveryPointRecord = {
    id: `base-${baseSeq}`,
    time: 0,
    type: 'crash-consistent',
    segment: baseSeq,
  };
  return {
    state: 'journaling',
    disk: (i) => disks[i]!,
    cut: async () => point,
    dirtyRanges: () => new Map(),
    markShipped: async () => undefined,
    resetAfterResync: async () => undefined,
  };
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]!) as DriverArgs;
  const rep = await openReplica(a.dir, a.sizes);
  process.stdout.write('ready\n');
  const target = new ResyncTarget({ store: rep.store, disks: rep.disks, log: silentLogger });
  const peer = new LoopbackPeer(target, {
    afterApply: (n) => void process.stdout.write(`batch ${n}\n`),
  });
  await runResyncSource({
    dir: a.dir,
    journal: quietSource(a.dir, a.sizes, a.baseSeq),
    diskSizes: a.sizes,
    scope: 'all',
    rule: 'crash-test',
    peer,
    chunkBytes: a.chunk,
    batchChunks: 4,
    log: silentLogger,
  });
  await rep.store.close();
  process.stdout.write('done\n');
}

await main();
