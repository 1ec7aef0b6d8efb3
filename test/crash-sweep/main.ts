/**
 * `npm run crash-sweep -- [--seed N] [--rounds K]`: the long form of the storage-path crash
 * sweep (the test suite runs a few rounds; this runs as many as asked). Prints its seed.
 */
import { runSweep } from './sweep.ts';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const seed = Number(flag('--seed') ?? process.env['SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const rounds = Number(flag('--rounds') ?? 100);
if (!Number.isInteger(seed) || !Number.isInteger(rounds) || rounds < 1) {
  process.stderr.write('usage: npm run crash-sweep -- [--seed N] [--rounds K]\n');
  process.exit(2);
}
process.stderr.write(`crash sweep: SEED=${seed}, ${rounds} rounds\n`);
try {
  const report = await runSweep({ seed, rounds, log: (l) => process.stderr.write(`${l}\n`) });
  process.stdout.write(`${JSON.stringify(report)}\n`);
} catch (e) {
  process.stderr.write(`crash sweep FAILED (SEED=${seed}): ${(e as Error).message}\n`);
  process.exitCode = 1;
}
