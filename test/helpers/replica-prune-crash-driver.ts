/**
 * Child process for the prune crash rounds (replica-prune-crash.ts): opens the replica store
 * with a short retention (which repairs whatever the previous kill left), prints `ready`, then
 * applies the model's segments from lastApplied + 1 onwards and, after every 1–3 applies
 * (seeded), prunes as of the applied point's time, so every few cycles points and undo files
 * go. Lines: `applied <seq>`, `pruning <n> <seq>` before the n-th prune, `pruned <n> <count>`
 * after it.
 *
 * With `killAt: { prune, op }` the driver SIGKILLs itself inside its prune number `prune`:
 * op 0 = before the batch that drops the points, op k ≥ 1 = after that batch and k − 1 undo
 * file deletions; a prune with fewer steps is killed at its end, before it returns. It prints
 * `kill <prune> <op>` first (stdout is synchronous on a pipe). Without killAt it runs until
 * the test kills it.
 *
 * Usage: node bin/run-ts.mjs test/helpers/replica-prune-crash-driver.ts '<json>' with
 * { dir, diskPaths, diskSizes, seed, cadenceSeed, retention, shape?, killAt? }.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { silentLogger } from '../../common/log/log.ts';
import { FakeClock } from '../../common/time/clock.ts';
import { openReplicaStore } from '../../agent/host/recovery/replica-store.ts';
import { openLevel, type LevelLike } from '../../agent/host/recovery/recovery-db.ts';
import { makeSegment, openDisks, segmentTime, type SegmentShape } from './replica-model.ts';
import { seededRandom } from './seeded-random.ts';

export interface PruneRetention {
  readonly retentionHours: number;
  readonly appConsistentRetentionHours: number;
}

export interface PruneDriverArgs {
  dir: string;
  diskPaths: string[];
  diskSizes: number[];
  seed: number;
  /** Seeds how many applies come between prunes. */
  cadenceSeed: number;
  retention: PruneRetention;
  shape?: SegmentShape;
  killAt?: { prune: number; op: number };
}

const args = JSON.parse(process.argv[2] ?? '{}') as PruneDriverArgs;
let inPrune = false;
let prunes = 0;
let op = 0;

function die(): never {
  process.stdout.write(`kill ${prunes} ${op}\n`);
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

/** Called before each I/O step of a prune: the batch, then every undo file deletion. */
function step(): void {
  if (!inPrune) return;
  if (args.killAt && args.killAt.prune === prunes && args.killAt.op === op) die();
  op++;
}

// The store deletes undo files with the named import unlinkSync: rebind it (live binding).
const realUnlink = fs.unlinkSync;
fs.unlinkSync = (path: fs.PathLike): void => {
  step();
  realUnlink(path);
};
syncBuiltinESMExports();

function stepping(db: LevelLike): LevelLike {
  return {
    open: () => db.open(),
    get: (k) => db.get(k),
    values: (r) => db.values(r),
    close: () => db.close(),
    put: (k, v, o) => db.put(k, v, o),
    batch: async (ops, o) => {
      step();
      await db.batch(ops, o);
    },
  };
}

async function main(): Promise<void> {
  const disks = openDisks(args.diskPaths);
  const store = await openReplicaStore({
    dir: args.dir,
    vmId: 'vm-prune-crash',
    disks,
    diskPaths: args.diskPaths,
    clock: new FakeClock(),
    log: silentLogger,
    ...args.retention,
    level: stepping(openLevel(`${args.dir}/db`)),
  });
  process.stdout.write('ready\n');
  const cadence = seededRandom(args.cadenceSeed);
  let untilPrune = cadence.range(1, 3);
  for (let seq = store.lastApplied + 1; ; seq++) {
    await store.apply(makeSegment(args.seed, seq, args.diskSizes, segmentTime(seq), args.shape));
    process.stdout.write(`applied ${seq}\n`);
    if (--untilPrune > 0) continue;
    untilPrune = cadence.range(1, 3);
    prunes++;
    op = 0;
    process.stdout.write(`pruning ${prunes} ${seq}\n`);
    inPrune = true;
    const dropped = await store.prune(segmentTime(seq));
    if (args.killAt?.prune === prunes) die();
    inPrune = false;
    process.stdout.write(`pruned ${prunes} ${dropped.length}\n`);
  }
}

await main();
