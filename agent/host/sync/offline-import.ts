/**
 * Offline initial replication, target side (R15): finds the export of a VM in the import
 * folder (`<path>/<vm>/`, as offline-export.ts wrote it and the administrator carried it),
 * verifies it whole, then writes it into the replica and rebases the recovery store to the
 * export's baseSeq (the store then expects segment baseSeq + 1: only the journal since the
 * export travels).
 *
 * Verify first, write after: a damaged or incomplete copy (manifest, a missing file, a file of
 * another size, one chunk whose digest differs) is refused naming the file and the chunk, and
 * the replica is not touched. The write empties each image (truncated to holes) and writes the
 * chunks that are not zero, then fsyncs; the store is rebased last, so a crash before it leaves
 * a replica that no segment is applied to, and the import asked again writes it again.
 * `<replica vmDir>/offline-import.json` records the import done, so it is not redone.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { ReplicaStore } from '../recovery/types.ts';
import type { RawDisk } from '../vm/raw-disk.ts';
import {
  MANIFEST,
  checkManifest,
  chunkMatches,
  chunkRefusal,
  sizeRefusal,
  type OfflineManifest,
} from './offline-manifest.ts';
import { isAllZero } from '../../../common/bytes/all-zero.ts';
import { readJsonFile, writeJsonFile } from './sync-state-file.ts';
import { exportFolder } from './offline-export.ts';

export const IMPORT_STATE = 'offline-import.json';

export interface ImportRecord {
  readonly version: 1;
  readonly exportId: string;
  readonly baseSeq: number;
}

export interface ImportResult {
  readonly exportId: string;
  readonly baseSeq: number;
  readonly bytesVerified: number;
  readonly bytesWritten: number;
  readonly already: boolean;
}

export function readImportRecord(vmDir: string): ImportRecord | undefined {
  const r = readJsonFile<ImportRecord>(vmDir, IMPORT_STATE);
  return r?.version === 1 ? r : undefined;
}

/** Reads and checks the manifest of `vm`'s export in `path`. */
export function readManifest(
  path: string,
  expect: { vm: string; exportId?: string; diskSizes: readonly number[] },
): OfflineManifest {
  const folder = exportFolder(path, expect.vm);
  const file = join(folder, MANIFEST);
  if (!existsSync(file)) {
    throw new SecondsiteError(
      'SS_NOT_FOUND',
      `no export of ${expect.vm} in ${path} (expected ${file}); copy the export folder ` +
        `${expect.vm}/ from the source host's export path into ${path}`,
      { file },
    );
  }
  let raw: unknown;
  try {
    raw = readJsonFile<unknown>(folder, MANIFEST);
  } catch {
    throw new SecondsiteError(
      'SS_IMPORT_INVALID',
      `${file} is not readable JSON: the copy is damaged`,
      { file },
    );
  }
  return checkManifest(raw, { ...expect, where: file });
}

/** Reads every chunk of every disk file and checks it against the manifest. */
export function verifyExport(folder: string, m: OfflineManifest): number {
  const buf = Buffer.allocUnsafe(m.chunkBytes);
  let verified = 0;
  for (const d of m.disks) {
    const file = join(folder, d.file);
    if (!existsSync(file)) {
      throw new SecondsiteError('SS_IMPORT_INVALID', `${file} is missing: the copy is incomplete`, {
        file,
      });
    }
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size !== d.sizeBytes) throw sizeRefusal(file, size, d.sizeBytes);
      d.chunks.forEach((digest, k) => {
        const at = k * m.chunkBytes;
        const data = readFull(fd, buf, Math.min(m.chunkBytes, d.sizeBytes - at), at);
        if (!chunkMatches(m.algorithm, digest, data)) throw chunkRefusal(file, k, m.chunkBytes);
        verified += data.length;
      });
    } finally {
      closeSync(fd);
    }
  }
  return verified;
}

export interface OfflineImportOptions {
  readonly vm: string;
  /** The import folder (the policy's import path); the VM's folder is inside it. */
  readonly path: string;
  /** The export the coordinator expects; '' takes whichever export is there. */
  readonly exportId: string;
  /** The replica VM's folder (holds offline-import.json). */
  readonly vmDir: string;
  /** The replica disks and their image files, in disk order. */
  readonly disks: readonly RawDisk[];
  readonly diskPaths: readonly string[];
  readonly store: Pick<ReplicaStore, 'rebase'>;
  readonly log: Logger;
}

export async function importVmOffline(o: OfflineImportOptions): Promise<ImportResult> {
  const done = readImportRecord(o.vmDir);
  if (done && o.exportId !== '' && done.exportId === o.exportId) {
    return { ...done, bytesVerified: 0, bytesWritten: 0, already: true };
  }
  const diskSizes = o.disks.map((d) => d.size);
  const m = readManifest(o.path, {
    vm: o.vm,
    diskSizes,
    ...(o.exportId ? { exportId: o.exportId } : {}),
  });
  const folder = exportFolder(o.path, o.vm);
  const bytesVerified = verifyExport(folder, m);
  let bytesWritten = 0;
  const buf = Buffer.allocUnsafe(m.chunkBytes);
  m.disks.forEach((d, i) => {
    const disk = o.disks[i]!;
    truncateSync(o.diskPaths[i]!, 0);
    truncateSync(o.diskPaths[i]!, d.sizeBytes);
    const fd = openSync(join(folder, d.file), 'r');
    try {
      d.chunks.forEach((digest, k) => {
        if (digest === null) return;
        const at = k * m.chunkBytes;
        const data = readFull(fd, buf, Math.min(m.chunkBytes, d.sizeBytes - at), at);
        // Verified above; a file changed since is caught here rather than written.
        if (isAllZero(data) || !chunkMatches(m.algorithm, digest, data)) {
          throw chunkRefusal(join(folder, d.file), k, m.chunkBytes);
        }
        disk.writeSync(at, data);
        bytesWritten += data.length;
      });
    } finally {
      closeSync(fd);
    }
    disk.syncSync();
  });
  await o.store.rebase(m.baseSeq);
  writeJsonFile(o.vmDir, IMPORT_STATE, { version: 1, exportId: m.exportId, baseSeq: m.baseSeq });
  o.log.info(
    { vm: o.vm, exportId: m.exportId, baseSeq: m.baseSeq, bytesVerified, bytesWritten },
    'offline import done; the replica expects the segment after the export',
  );
  return { exportId: m.exportId, baseSeq: m.baseSeq, bytesVerified, bytesWritten, already: false };
}

function readFull(fd: number, buf: Buffer, length: number, at: number): Buffer {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, at + done);
    if (n === 0) break;
    done += n;
  }
  return buf.subarray(0, done);
}
