/**
 * `npm run crash-sweep -- [--seed N] [--rounds K]`: the long form of the storage-path crash
 * sweep (the test suite runs a few rounds; this runs as many as asked). Prints its seed.
 * `npm run crash-sweep -- --prune [--seed N] [--rounds K]`: the same for kill -9 of the
 * replica store while it prunes (test/helpers/replica-prune-crash.ts).
 */
import { runPruneCrashRounds } from '../helpers/replica-prune-crash.ts';
import { runSweep } from './sweep.ts';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const seed = Number(flag('--seed') ?? process.env['SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const rounds = Number(flag('--rounds') ?? 100);
if (!Number.isInteger(seed) || !Number.isInteger(rounds) || rounds < 1) {
  process.stderr.write('usage: npm run crash-sweep -- [--prune] [--seed N] [--rounds K]\n');
  process.exit(2);
}
const prune = process.argv.includes('--prune');
process.stderr.write(`crash sweep${prune ? ' (prune)' : ''}: SEED=${seed}, ${rounds} rounds\n`);
try {
  const log = (l: string): void => void process.stderr.write(`${l}\n`);
  const report = prune
    ? await runPruneCrashRounds({ seed, rounds, log })
    : await runSweep({ seed, rounds, log });
  process.stdout.write(`${JSON.stringify(report)}\n`);
} catch (e) {
  process.stderr.write(`crash sweep FAILED (SEED=${seed}): ${(e as Error).message}\n`);
  process.exitCode = 1;
}
