/**
 * Parsing of the human units that flags and config files use: sizes ("64MiB", "1GiB", "4096")
 * and durations ("500ms", "30s", "5m", "2h"). Used by the host agent, the workload tool and the
 * coordinator alike; errors are bad input naming the field, so a CLI exits 2 before acting.
 */
import { badInput } from '../errors/errors.ts';

const SIZE_UNITS: Readonly<Record<string, number>> = Object.freeze({
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
});

const DURATION_UNITS: Readonly<Record<string, number>> = Object.freeze({
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
});

/** "1GiB" → 1073741824. Whole bytes only; refuses negatives, fractions of a byte and unknown units. */
export function parseSize(field: string, text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = SIZE_UNITS[(m?.[2] ?? '').toLowerCase()];
  if (!m || unit === undefined) {
    throw badInput(field, `"${text}" is not a size (examples: 4096, 64KiB, 64MiB, 1GiB)`);
  }
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes)) {
    throw badInput(field, `"${text}" is not a whole number of bytes`);
  }
  return bytes;
}

/** "30s" → 30000. A bare number is seconds. */
export function parseDuration(field: string, text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) throw badInput(field, `"${text}" is not a duration (examples: 500ms, 30s, 5m, 2h)`);
  const ms = Number(m[1]) * (DURATION_UNITS[m[2] ?? 's'] ?? 1000);
  if (!Number.isFinite(ms)) throw badInput(field, `"${text}" is too long`);
  return Math.round(ms);
}

/** 1536 → "1.5 KiB": for human output only. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
