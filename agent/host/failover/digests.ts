/**
 * SHA-256 of whole disks, which a planned failover compares (R24): the primary's images once
 * its journal is closed, and the replica's disks at the chosen point through its store. Read
 * in 8 MiB pieces, yielding between them so the agent keeps serving while a large disk hashes.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { setImmediate } from 'node:timers/promises';
import type { PointSource } from './test-view.ts';

const PIECE = 8 * 1024 * 1024;

export async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: PIECE })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/** Disk `disk` (of `size` bytes) as it was at `pointId`. */
export async function pointDigest(
  store: Pick<PointSource, 'read'>,
  disk: number,
  size: number,
  pointId: string,
): Promise<string> {
  const hash = createHash('sha256');
  for (let at = 0; at < size; at += PIECE) {
    hash.update(store.read(disk, at, Math.min(PIECE, size - at), pointId));
    await setImmediate();
  }
  return hash.digest('hex');
}
