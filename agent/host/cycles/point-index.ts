/**
 * The recovery points a VM's journal has cut, kept in <vm folder>/points.jsonl so they stay
 * queryable after their segments are shipped and deleted. One JSON record per line, appended
 * and fsynced after the journal has persisted the cut; a line torn by a crash is dropped on
 * open (the journal's seal record is the authority, this index is for listing).
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import type { RecoveryPointRecord } from '../journal/types.ts';
import type { Logger } from '../../../common/log/log.ts';

export interface PointIndex {
  /** Oldest first. */
  list(): readonly RecoveryPointRecord[];
  latest(): RecoveryPointRecord | undefined;
  append(point: RecoveryPointRecord): void;
  /** Removes every record and the file (protection ended). */
  clear(): void;
}

function parseLines(text: string, log: Logger): RecoveryPointRecord[] {
  const points: RecoveryPointRecord[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      points.push(JSON.parse(line) as RecoveryPointRecord);
    } catch {
      log.warn({ line: line.slice(0, 80) }, 'dropping a torn recovery point index line');
    }
  }
  return points;
}

export function openPointIndex(path: string, log: Logger): PointIndex {
  const points = existsSync(path) ? parseLines(readFileSync(path, 'utf8'), log) : [];
  return {
    list: () => points,
    latest: () => points[points.length - 1],
    append(point: RecoveryPointRecord): void {
      const fd = openSync(path, 'a', 0o600);
      try {
        writeSync(fd, `${JSON.stringify(point)}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      points.push(point);
    },
    clear(): void {
      points.length = 0;
      rmSync(path, { force: true });
    },
  };
}
