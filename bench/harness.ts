/**
 * The benchmark harness: every scenario measures our figure and its baseline in the same run
 * (the machine is shared and noisy; only ratios within one run compare). `ratio` > 1 always
 * means better than the baseline: ours ÷ baseline for rates, baseline ÷ ours for times.
 */
export type Direction = 'higher-is-better' | 'lower-is-better';

export interface BenchResult {
  scenario: string;
  unit: string;
  ours: number;
  baseline: number;
  baselineName: string;
  ratio: number;
  /** Extra figures worth reading (latency percentiles, sizes); printed under the table. */
  notes?: string;
}

export interface Scenario {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<BenchResult[]>;
}

export interface BenchContext {
  /** A scratch folder for this scenario, removed afterwards. */
  dir: string;
  /** Progress lines for people (stderr; never part of --json output). */
  say(line: string): void;
}

export function result(
  scenario: string,
  unit: string,
  direction: Direction,
  ours: number,
  baseline: number,
  baselineName: string,
  notes?: string,
): BenchResult {
  const ratio = direction === 'higher-is-better' ? ours / baseline : baseline / ours;
  return {
    scenario,
    unit,
    ours: round(ours),
    baseline: round(baseline),
    baselineName,
    ratio: round(ratio),
    ...(notes ? { notes } : {}),
  };
}

function round(n: number): number {
  return Number(n.toPrecision(4));
}

export function formatTable(rows: BenchResult[]): string {
  const header = ['scenario', 'unit', 'ours', 'baseline', 'baseline is', 'ratio'];
  const body = rows.map((r) => [
    r.scenario,
    r.unit,
    String(r.ours),
    String(r.baseline),
    r.baselineName,
    `${r.ratio}x`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const sep = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  const notes = rows.filter((r) => r.notes).map((r) => `- ${r.scenario}: ${r.notes}`);
  return [line(header), sep, ...body.map(line), ...(notes.length ? ['', ...notes] : [])].join('\n');
}

/** Median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
