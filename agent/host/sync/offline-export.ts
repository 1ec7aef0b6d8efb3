/**
 * Offline initial replication, source side (R15): exports the VM's disks, read through its
 * journal exactly as the initial copy reads them (initial-copy-source.ts: a cut makes the
 * base, every later write is also in a segment after it), into `<path>/<vm>/` with a manifest
 * (offline-manifest.ts). Sparse-aware: all-zero chunks are holes in the image files.
 *
 * Steps, and why a crash at any point is harmless:
 *   1. write into `<path>/<vm>.partial/` (removed first if an earlier attempt left it);
 *   2. per chunk: write it unless zero, record its digest; fsync the images;
 *   3. write manifest.json (atomically), then rename the folder to `<path>/<vm>/` (replacing
 *      an earlier export of ours) and fsync `<path>`;
 *   4. record { exportId, baseSeq, path } in `<vmDir>/offline-export.json`, for the seed step.
 * A folder without a manifest is never imported; an export asked again with the same id finds
 * its finished folder and does nothing.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { fsyncDirSync, writeFileAtomicSync } from '../../../common/fs/atomic-file.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { VmJournal } from '../journal/types.ts';
import { DEFAULT_CHUNK_BYTES } from './chunk-grid.ts';
import type { HashAlgorithm } from './chunk-hash.ts';
import { initialCopySource } from './initial-copy-source.ts';
import {
  MANIFEST,
  chunkDigest,
  diskFileName,
  type ManifestDisk,
  type OfflineManifest,
} from './offline-manifest.ts';
import { readJsonFile, writeJsonFile } from './sync-state-file.ts';

/** `<vmDir>/offline-export.json`: the export the source waits to be seeded from. */
export const EXPORT_STATE = 'offline-export.json';

export interface ExportRecord {
  readonly version: 1;
  readonly exportId: string;
  readonly baseSeq: number;
  readonly path: string;
  readonly epoch: number;
}

export interface OfflineExportOptions {
  readonly vm: string;
  readonly exportId: string;
  readonly epoch: number;
  /** The export folder (the policy's export path); the VM's folder goes inside it. */
  readonly path: string;
  /** The VM's folder on this host (holds offline-export.json). */
  readonly vmDir: string;
  readonly journal: Pick<VmJournal, 'disk' | 'cut' | 'state'>;
  readonly diskSizes: readonly number[];
  /** @default 1 MiB */
  readonly chunkBytes?: number;
  /** @default 'blake3' */
  readonly algorithm?: HashAlgorithm;
  readonly now: () => number;
  readonly log: Logger;
}

export interface ExportResult {
  readonly exportId: string;
  readonly baseSeq: number;
  readonly folder: string;
  /** Bytes written to image files (zero chunks excluded). */
  readonly bytesWritten: number;
  readonly bytesTotal: number;
  /** An earlier call had finished this export. */
  readonly already: boolean;
}

export function exportFolder(path: string, vm: string): string {
  return join(path, vm);
}

export function readExportRecord(vmDir: string): ExportRecord | undefined {
  const r = readJsonFile<ExportRecord>(vmDir, EXPORT_STATE);
  return r?.version === 1 ? r : undefined;
}

export async function exportVmOffline(o: OfflineExportOptions): Promise<ExportResult> {
  const folder = exportFolder(o.path, o.vm);
  const bytesTotal = o.diskSizes.reduce((a, b) => a + b, 0);
  const done = readExportRecord(o.vmDir);
  const finished = readJsonFile<OfflineManifest>(folder, MANIFEST);
  if (done?.exportId === o.exportId && finished?.exportId === o.exportId) {
    return {
      exportId: o.exportId,
      baseSeq: done.baseSeq,
      folder,
      bytesWritten: 0,
      bytesTotal,
      already: true,
    };
  }
  if (existsSync(folder) && !existsSync(join(folder, MANIFEST))) {
    throw new SecondsiteError(
      'SS_CONFLICT',
      `${folder} exists and is not a secondsite export; move it away or choose another export path`,
      { folder },
    );
  }
  mkdirSync(o.path, { recursive: true });
  const partial = `${folder}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true, mode: 0o700 });
  const chunkBytes = o.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const algorithm = o.algorithm ?? 'blake3';
  const source = await initialCopySource({
    journal: o.journal,
    diskSizes: o.diskSizes,
    chunkBytes,
    log: o.log,
  });
  const fds = o.diskSizes.map((size, i) => {
    const fd = openSync(join(partial, diskFileName(i)), 'w', 0o600);
    ftruncateSync(fd, size);
    return fd;
  });
  const chunks: Array<Array<string | null>> = o.diskSizes.map(() => []);
  let bytesWritten = 0;
  try {
    for await (const c of source.chunks()) {
      const fd = fds[c.disk]!;
      if (c.data !== null) {
        writeAll(fd, c.data, c.offset);
        bytesWritten += c.length;
      }
      chunks[c.disk]!.push(c.data === null ? null : chunkDigest(algorithm, c.data));
    }
    for (const fd of fds) fsyncSync(fd);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  const disks: ManifestDisk[] = o.diskSizes.map((sizeBytes, index) => ({
    index,
    file: diskFileName(index),
    sizeBytes,
    chunks: chunks[index]!,
  }));
  const manifest: OfflineManifest = {
    version: 1,
    vm: o.vm,
    exportId: o.exportId,
    baseSeq: source.baseSeq,
    chunkBytes,
    algorithm,
    createdAt: o.now(),
    disks,
  };
  writeFileAtomicSync(join(partial, MANIFEST), JSON.stringify(manifest) + '\n');
  fsyncDirSync(partial);
  rmSync(folder, { recursive: true, force: true });
  renameSync(partial, folder);
  fsyncDirSync(o.path);
  const record: ExportRecord = {
    version: 1,
    exportId: o.exportId,
    baseSeq: source.baseSeq,
    path: o.path,
    epoch: o.epoch,
  };
  writeJsonFile(o.vmDir, EXPORT_STATE, record);
  o.log.info(
    { vm: o.vm, exportId: o.exportId, baseSeq: source.baseSeq, folder, bytesWritten, bytesTotal },
    'offline export done',
  );
  return {
    exportId: o.exportId,
    baseSeq: source.baseSeq,
    folder,
    bytesWritten,
    bytesTotal,
    already: false,
  };
}

function writeAll(fd: number, data: Buffer, at: number): void {
  for (let done = 0; done < data.length;) {
    done += writeSync(fd, data, done, data.length - done, at + done);
  }
}
