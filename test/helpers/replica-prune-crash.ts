/**
 * kill -9 of a replica store while it prunes (issue 3), shared by the component test
 * (test/component/replica-store-prune-crash.test.ts, a few rounds) and `npm run crash-sweep --
 * --prune` (many). A child process (replica-prune-crash-driver.ts) applies the model's
 * segments with a short retention and prunes every 1–3 applies; each round kills it in one of
 * three ways, chosen by the seed:
 *
 * - step: the driver kills itself at a chosen step of a chosen prune (before the batch that
 *   drops the points, or after it and after k undo file deletions, or at its end);
 * - timed: the test kills it a random few milliseconds after the driver announced a prune;
 * - random: the test kills it at a random moment (apply or prune).
 *
 * After every kill the store is reopened in this process and must hold:
 *   1. the replica disks equal the shadow of its latest point (never a mix of two points);
 *   2. every retained point reads, on every disk, exactly as the shadow history at that point;
 *   3. no point the retention still wants is gone, and no point is listed that cannot be read
 *      (pruned points are gone, or still there and fully readable: never half);
 *   4. no undo file outlives its need (open removes what an interrupted prune left);
 *   5. it converges: a prune now leaves exactly the points the retention keeps, still readable,
 *      and the next segment applies once.
 * Failures throw with the seed and round; nothing here depends on timing to pass.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { silentLogger } from '../../common/log/log.ts';
import { FakeClock } from '../../common/time/clock.ts';
import { openReplicaStore } from '../../agent/host/recovery/replica-store.ts';
import { pointsToPrune } from '../../agent/host/recovery/retention.ts';
import { parseUndoFileName } from '../../agent/host/recovery/undo-format.ts';
import type { ReplicaStore } from '../../agent/host/recovery/types.ts';
import type { RawDisk } from '../../agent/host/vm/raw-disk.ts';
import type { PruneDriverArgs, PruneRetention } from './replica-prune-crash-driver.ts';
import {
  applyToShadow,
  firstDifference,
  initialContents,
  makeSegment,
  openDisks,
  segmentTime,
  writeDiskImages,
} from './replica-model.ts';
import { seededRandom } from './seeded-random.ts';

const MiB = 1 << 20;
const SIZES = [2 * MiB, 2 * MiB];
const SHAPE = { maxExtentsPerDisk: 12 };
const ROOT = resolve(import.meta.dirname, '../..');
/**
 * Segments are a minute apart (segmentTime): crash-consistent points live 3 of them, and the
 * app-consistent ones (every 4th) 12, so prunes drop points out of order and the oldest point
 * (which frees undo files) moves in jumps of several files.
 */
const RETENTION: PruneRetention = { retentionHours: 0.05, appConsistentRetentionHours: 0.2 };
const RULES = {
  retentionMs: RETENTION.retentionHours * 3_600_000,
  appConsistentRetentionMs: RETENTION.appConsistentRetentionHours * 3_600_000,
};
/** A driver that neither exits nor is killed within this long has hung. */
const ROUND_TIMEOUT_MS = 60_000;

export type KillKind = 'step' | 'timed' | 'random';

export interface PruneCrashReport {
  seed: number;
  rounds: number;
  kills: Record<KillKind, number>;
  /** Kills that landed between a prune's start and its end. */
  inPrune: number;
  /** ... of which after the points were dropped and before all undo files were. */
  afterBatch: number;
  /** Undo files that reopening removed (left by interrupted prunes or applies). */
  undoFilesRemovedAtOpen: number;
  /** Applies rolled back at open (random kills that landed in an apply). */
  rolledBack: number;
  /** The last segment applied. */
  lastApplied: number;
}

export interface PruneCrashOptions {
  seed: number;
  rounds: number;
  log?: (line: string) => void;
}

class Check extends Error {}

function check(ok: boolean, what: () => string): asserts ok {
  if (!ok) throw new Check(what());
}

interface Fixture {
  dir: string;
  diskPaths: string[];
  /** Shadow disks at `seq`, computed forwards (cheap when asked in ascending order). */
  shadowAt(seq: number): Buffer[];
}

function fixture(seed: number): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'ss-prune-crash-'));
  const base = initialContents(seed, SIZES);
  let cached = { seq: 0, disks: base.map((b) => Buffer.from(b)) };
  return {
    dir,
    diskPaths: writeDiskImages(dir, base),
    shadowAt(seq) {
      if (seq < cached.seq) cached = { seq: 0, disks: base.map((b) => Buffer.from(b)) };
      for (let s = cached.seq + 1; s <= seq; s++) {
        applyToShadow(cached.disks, makeSegment(seed, s, SIZES, segmentTime(s), SHAPE));
      }
      cached.seq = seq;
      return cached.disks;
    },
  };
}

interface DriverRun {
  lines: string[];
  /** The driver's exit: killed by the test, by itself, or (a failure) on its own. */
  signal: NodeJS.Signals | null;
  code: number | null;
}

function runDriver(
  f: Fixture,
  seed: number,
  cadenceSeed: number,
  kill:
    | { kind: 'step'; prune: number; op: number }
    | { kind: 'timed'; prune: number; delayMs: number }
    | { kind: 'random'; delayMs: number },
): Promise<DriverRun> {
  const args: PruneDriverArgs = {
    dir: join(f.dir, 'recovery'),
    diskPaths: f.diskPaths,
    diskSizes: SIZES,
    seed,
    cadenceSeed,
    retention: RETENTION,
    shape: SHAPE,
    ...(kill.kind === 'step' ? { killAt: { prune: kill.prune, op: kill.op } } : {}),
  };
  const child = spawn(
    process.execPath,
    ['bin/run-ts.mjs', 'test/helpers/replica-prune-crash-driver.ts', JSON.stringify(args)],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: string[] = [];
  let stderr = '';
  let partial = '';
  const killLater = (ms: number): void => void setTimeout(() => child.kill('SIGKILL'), ms);
  const hung = setTimeout(() => child.kill('SIGKILL'), ROUND_TIMEOUT_MS);
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      if (kill.kind === 'random' && line === 'ready') killLater(kill.delayMs);
      if (kill.kind === 'timed' && line.startsWith(`pruning ${kill.prune} `)) {
        if (kill.delayMs === 0) child.kill('SIGKILL');
        else killLater(kill.delayMs);
      }
    }
  });
  return new Promise((done, fail) => {
    child.on('error', fail);
    child.on('exit', (code, signal) => {
      clearTimeout(hung);
      if (signal !== 'SIGKILL') {
        fail(new Error(`prune crash driver exited ${code ?? signal}:\n${stderr}`));
      } else done({ lines, signal, code });
    });
  });
}

/** Where the kill landed, from the driver's last lines. */
function landing(lines: readonly string[]): { inPrune: boolean; afterBatch: boolean } {
  const lastPruning = lines.findLastIndex((l) => l.startsWith('pruning '));
  const lastPruned = lines.findLastIndex((l) => l.startsWith('pruned '));
  const inPrune = lastPruning > lastPruned;
  const killed = lines.find((l) => l.startsWith('kill '));
  const op = killed ? Number(killed.split(' ')[2]) : 0;
  return { inPrune, afterBatch: inPrune && op >= 1 };
}

async function openStore(f: Fixture): Promise<{ store: ReplicaStore; disks: RawDisk[] }> {
  const disks = openDisks(f.diskPaths);
  const store = await openReplicaStore({
    dir: join(f.dir, 'recovery'),
    vmId: 'vm-prune-crash',
    disks,
    clock: new FakeClock(),
    log: silentLogger,
    ...RETENTION,
  });
  return { store, disks };
}

/** The seqs the retention keeps when the latest point is `last`. */
function kept(last: number): number[] {
  const all = Array.from({ length: last }, (_, i) => {
    const { point } = makeSegment(0, i + 1, [], segmentTime(i + 1)); // no disks: the point only
    return { seq: i + 1, time: point.time, type: point.type };
  });
  const drop = new Set(pointsToPrune(all, segmentTime(last), RULES));
  return all.map((p) => p.seq).filter((s) => !drop.has(s));
}

/** Checks 1–4; `where` names the round for the message. */
function checkStore(f: Fixture, store: ReplicaStore, disks: RawDisk[], where: string): void {
  const last = store.lastApplied;
  const points = store.points();
  const seqs = points.map((p) => p.segment);
  check(
    last === 0 ? points.length === 0 : store.latest()?.segment === last,
    () => `${where}: latest point ${store.latest()?.segment} but lastApplied ${last}`,
  );
  const missing = kept(last).filter((s) => !seqs.includes(s));
  check(missing.length === 0, () => `${where}: retained points ${missing.join(',')} are gone`);
  check(
    seqs.every((s) => s >= 1 && s <= last),
    () => `${where}: points ${seqs.join(',')} past lastApplied ${last}`,
  );
  for (const p of points) {
    const shadow = f.shadowAt(p.segment);
    disks.forEach((disk, d) => {
      const got = store.read(d, 0, disk.size, p.id);
      const diff = firstDifference(got, shadow[d]!);
      check(
        diff === undefined,
        () => `${where}: point ${p.segment} disk ${d} differs from the shadow at byte ${diff}`,
      );
    });
  }
  const latest = f.shadowAt(last);
  disks.forEach((disk, d) => {
    const diff = firstDifference(disk.readSync(0, disk.size), latest[d]!);
    check(
      diff === undefined,
      () => `${where}: disk ${d} is not at point ${last} (first difference at byte ${diff})`,
    );
  });
  const oldest = seqs[0] ?? last;
  const files = readdirSync(join(f.dir, 'recovery', 'undo'))
    .map(parseUndoFileName)
    .filter((s): s is number => s !== undefined);
  const stray = files.filter((s) => s <= oldest || s > last);
  check(stray.length === 0, () => `${where}: undo files ${stray.join(',')} outlived their need`);
}

export async function runPruneCrashRounds(o: PruneCrashOptions): Promise<PruneCrashReport> {
  const rnd = seededRandom(o.seed);
  const f = fixture(o.seed);
  const report: PruneCrashReport = {
    seed: o.seed,
    rounds: o.rounds,
    kills: { step: 0, timed: 0, random: 0 },
    inPrune: 0,
    afterBatch: 0,
    undoFilesRemovedAtOpen: 0,
    rolledBack: 0,
    lastApplied: 0,
  };
  try {
    for (let round = 0; round < o.rounds; round++) {
      const where = `SEED=${o.seed} round ${round}`;
      // Half the rounds at an exact prune step, a third timed into a prune, the rest anywhere.
      const pick = rnd.int(6);
      const kind: KillKind = pick < 3 ? 'step' : pick < 5 ? 'timed' : 'random';
      const prune = rnd.range(1, 3);
      const kill =
        kind === 'step'
          ? { kind, prune, op: rnd.int(6) }
          : kind === 'timed'
            ? { kind, prune, delayMs: rnd.int(4) }
            : { kind, delayMs: rnd.int(120) };
      const run = await runDriver(f, o.seed, rnd.int(2 ** 31), kill);
      report.kills[kind]++;
      const landed = landing(run.lines);
      if (landed.inPrune) report.inPrune++;
      if (landed.afterBatch) report.afterBatch++;
      const { store, disks } = await openStore(f);
      try {
        report.undoFilesRemovedAtOpen += store.openReport.undoFilesRemoved;
        if (store.openReport.rolledBack !== undefined) report.rolledBack++;
        check(
          store.openReport.pointsLost.length === 0,
          () => `${where}: points lost at open: ${store.openReport.pointsLost.join(',')}`,
        );
        checkStore(f, store, disks, `${where} (${JSON.stringify(kill)}), after reopening`);
        const last = store.lastApplied;
        if (last > 0) {
          await store.prune(segmentTime(last));
          const want = kept(last);
          const have = store.points().map((p) => p.segment);
          check(
            have.join(',') === want.join(','),
            () =>
              `${where}: after a prune the store keeps ${have.join(',')}, not ${want.join(',')}`,
          );
          checkStore(f, store, disks, `${where}, after pruning again`);
        }
        const next = makeSegment(o.seed, last + 1, SIZES, segmentTime(last + 1), SHAPE);
        check((await store.apply(next)) === 'applied', () => `${where}: ${last + 1} not applied`);
        check((await store.apply(next)) === 'duplicate', () => `${where}: applied twice`);
        report.lastApplied = store.lastApplied;
        o.log?.(
          `round ${round}: ${kind} kill${landed.inPrune ? ' in a prune' : ''}, lastApplied ${last}, ${store.points().length} points`,
        );
      } finally {
        await store.close();
        for (const d of disks) await d.close();
      }
    }
    return report;
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
}
