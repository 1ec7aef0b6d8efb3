/**
 * Child process for the replica store crash test (test/component/replica-store-crash.test.ts):
 * opens the store (which repairs whatever the previous kill left), prints `ready`, then either
 * applies the model's segments from lastApplied + 1 onwards, printing `applied <seq>` after
 * each, or reverts to a point and prints `reverted`. The test SIGKILLs it at random moments.
 *
 * With `pauseOn`, the driver stops for good at that step of the protocol and prints `paused`,
 * so the test can kill it at an exact moment as well as at random ones: after the apply or
 * revert intent is durable, or just before the commit batch is written.
 *
 * Usage: node bin/run-ts.mjs test/helpers/replica-crash-driver.ts '<json>' with
 * { dir, diskPaths, diskSizes, seed, mode: 'apply' | 'revert', upTo?, target?, pauseOn?,
 * shape? }.
 */
import { silentLogger } from '../../common/log/log.ts';
import { FakeClock } from '../../common/time/clock.ts';
import { openReplicaStore } from '../../agent/host/recovery/replica-store.ts';
import { openLevel, type LevelLike } from '../../agent/host/recovery/recovery-db.ts';
import { makeSegment, openDisks, segmentTime, type SegmentShape } from './replica-model.ts';

export type PauseStep = 'apply-intent' | 'apply-commit' | 'revert-intent' | 'revert-commit';

interface DriverArgs {
  dir: string;
  diskPaths: string[];
  diskSizes: number[];
  seed: number;
  mode: 'apply' | 'revert';
  upTo?: number;
  target?: string;
  pauseOn?: PauseStep;
  shape?: SegmentShape;
}

/** Never returns: the process waits to be killed. */
async function pause(): Promise<never> {
  process.stdout.write('paused\n');
  setInterval(() => undefined, 1000);
  return new Promise<never>(() => undefined);
}

/** Wraps the real database so that the chosen protocol step pauses the process. */
function pausing(db: LevelLike, step: PauseStep | undefined): LevelLike {
  type Ops = Parameters<LevelLike['batch']>[0];
  const commitStep = (ops: Ops): PauseStep | undefined => {
    if (!ops.some((o) => o.key === 'lastApplied')) return undefined;
    return ops.some((o) => o.key.startsWith('point!') && o.type === 'put')
      ? 'apply-commit'
      : 'revert-commit';
  };
  return {
    open: () => db.open(),
    get: (k) => db.get(k),
    values: (r) => db.values(r),
    close: () => db.close(),
    put: async (k, v, o) => {
      await db.put(k, v, o);
      if (k === 'intent' && step === `${(JSON.parse(v) as { op: string }).op}-intent`)
        await pause();
    },
    batch: async (ops, o) => {
      if (step !== undefined && commitStep(ops) === step) await pause();
      await db.batch(ops, o);
    },
  };
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as DriverArgs;
  const disks = openDisks(args.diskPaths);
  const store = await openReplicaStore({
    dir: args.dir,
    vmId: 'vm-crash',
    disks,
    diskPaths: args.diskPaths,
    clock: new FakeClock(),
    log: silentLogger,
    retentionHours: 10_000,
    level: pausing(openLevel(`${args.dir}/db`), args.pauseOn),
  });
  process.stdout.write('ready\n');
  if (args.mode === 'revert') {
    await store.revertTo(args.target!);
    process.stdout.write('reverted\n');
  } else {
    for (let seq = store.lastApplied + 1; seq <= (args.upTo ?? Infinity); seq++) {
      await store.apply(makeSegment(args.seed, seq, args.diskSizes, segmentTime(seq), args.shape));
      process.stdout.write(`applied ${seq}\n`);
    }
  }
  await store.close();
}

await main();
