/**
 * `npm run bench [-- --json] [-- NAME...]`: runs the scenarios (all, or the named ones) and
 * prints a table, or a JSON array of {scenario, unit, ours, baseline, baselineName, ratio}.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS, hasNodeFlags } from '../agent/host/node-flags.ts';
import { formatTable, type BenchResult, type Scenario } from './harness.ts';
import { SCENARIOS } from './scenarios/index.ts';

async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const names = argv.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length) {
    process.stderr.write(
      `unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}\n`,
    );
    return 2;
  }
  const chosen: Scenario[] = names.length
    ? SCENARIOS.filter((s) => names.includes(s.name))
    : SCENARIOS;
  const results: BenchResult[] = [];
  const root = process.env['BENCH_DIR'] ?? tmpdir();
  for (const scenario of chosen) {
    // Each scenario starts with no dirty pages of the one before still being written back,
    // whatever it left (nbd-seq-write dirties 2 GB at a time; measured, its files are removed
    // and Dirty is back near 0 when it ends, so this is a guarantee rather than a fix).
    spawnSync('sync', { stdio: 'inherit' });
    const dir = mkdtempSync(join(root, `ss-bench-${scenario.name}-`));
    process.stderr.write(`\n== ${scenario.name}: ${scenario.description}\n`);
    try {
      results.push(...(await scenario.run({ dir, say: (l) => process.stderr.write(`   ${l}\n`) })));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(
    json ? `${JSON.stringify(results, null, 2)}\n` : `\n${formatTable(results)}\n`,
  );
  return 0;
}

if (hasNodeFlags()) {
  process.exitCode = await main(process.argv.slice(2));
} else {
  // This process plays a host agent's sender in several scenarios (initial-copy, resync, …), so
  // it runs with the node flags the agent runs with (agent/host/node-flags.ts): started
  // without them, it starts itself again with them.
  const self = fileURLToPath(import.meta.url);
  const run = fileURLToPath(new URL('../bin/run-ts.mjs', import.meta.url));
  const args = [...NODE_FLAGS, ...process.execArgv, run, self, ...process.argv.slice(2)];
  process.exitCode = spawnSync(process.execPath, args, { stdio: 'inherit' }).status ?? 1;
}
