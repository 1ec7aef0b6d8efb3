/**
 * `npm run bench [-- --json] [-- NAME...]`: runs the scenarios (all, or the named ones) and
 * prints a table, or a JSON array of {scenario, unit, ours, baseline, baselineName, ratio}.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

process.exitCode = await main(process.argv.slice(2));
