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
 * { dir, sizes, chunk, baseSeq, revertTo? }.
 */
import { silentLogger } from '../../common/log/log.ts';
import { runResyncSource } from '../../agent/host/sync/resync-source.ts';
import { ResyncTarget } from '../../agent/host/sync/resync-target.ts';
import { LoopbackPeer, openReplica, quietSource } from './sync-lab.ts';

interface DriverArgs {
  dir: string;
  sizes: number[];
  chunk: number;
  baseSeq: number;
  /** Instead of resyncing, fail over to this point (revertTo) and print `reverted`. */
  revertTo?: string;
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]!) as DriverArgs;
  const rep = await openReplica(a.dir, a.sizes);
  process.stdout.write('ready\n');
  if (a.revertTo !== undefined) {
    await rep.store.revertTo(a.revertTo);
    process.stdout.write('reverted\n');
    return;
  }
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
