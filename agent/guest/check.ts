/**
 * `secondsite workload --check`: reads whole disks back and classifies every block, without
 * the writer's memory (the pattern header says what each block should be). Used on a copy
 * that must be internally consistent: after a crash, on a replica, at a recovery point.
 * A block is zero (never written), pattern (intact), foreign (not written by a workload, e.g.
 * qemu-io), or bad (a pattern header with the wrong place or a torn body): only bad is an error.
 */
import type { NbdClient } from '../../common/nbd/client.ts';
import { PATTERN_MAGIC, checkBlock } from './pattern.ts';

export interface CheckReport {
  blocks: number;
  zero: number;
  pattern: number;
  foreign: number;
  bad: number;
  /** The first few bad blocks, with the reason. */
  badBlocks: string[];
}

/** Reads this many bytes per request; a multiple of every allowed block size up to 1 MiB. */
const READ_CHUNK = 1024 * 1024;

export async function checkDisks(
  disks: readonly NbdClient[],
  seed: number,
  blockSize: number,
): Promise<CheckReport> {
  const report: CheckReport = { blocks: 0, zero: 0, pattern: 0, foreign: 0, bad: 0, badBlocks: [] };
  const chunk = Math.max(blockSize, Math.floor(READ_CHUNK / blockSize) * blockSize);
  for (let disk = 0; disk < disks.length; disk++) {
    const client = disks[disk]!;
    const usable = Math.floor(client.size / blockSize) * blockSize;
    for (let base = 0; base < usable; base += chunk) {
      const data = await client.read(base, Math.min(chunk, usable - base));
      for (let at = 0; at < data.length; at += blockSize) {
        classify(report, data.subarray(at, at + blockSize), { seed, disk, offset: base + at });
      }
    }
  }
  return report;
}

function classify(
  report: CheckReport,
  block: Buffer,
  where: { seed: number; disk: number; offset: number },
): void {
  report.blocks++;
  const got = checkBlock(block, where);
  if (got.kind === 'zero') report.zero++;
  else if (got.kind === 'pattern') report.pattern++;
  else if (!block.subarray(0, PATTERN_MAGIC.length).equals(PATTERN_MAGIC)) report.foreign++;
  else {
    report.bad++;
    if (report.badBlocks.length < 20) {
      report.badBlocks.push(`disk ${where.disk} offset ${where.offset}: ${got.reason}`);
    }
  }
}
