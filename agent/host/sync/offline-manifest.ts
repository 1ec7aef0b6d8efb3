/**
 * Offline initial replication (R15): the folder an export writes and an import reads, and the
 * pure checks on it. The folder is `<path>/<vm>/`:
 *
 *   manifest.json   { version: 1, vm, exportId, baseSeq, chunkBytes, algorithm, createdAt,
 *                     disks: [{ index, file, sizeBytes, chunks: [hex digest | null] }] }
 *   disk-<i>.img    the disk as it was at segment baseSeq; sparse: all-zero chunks are holes
 *                   (digest null) and are not written
 *
 * `baseSeq` is the journal position at the export: the export holds every write of segments
 * <= baseSeq, so once imported the replica expects segment baseSeq + 1 and only the journal
 * since the export travels. The manifest is written last and the folder renamed into place at
 * the end, so a folder with a manifest is a finished export; anything missing or different in a
 * copy of it (a file, its size, one chunk) refuses the import naming the file and the chunk.
 */
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { isAllZero } from '../../../common/bytes/all-zero.ts';
import { hashChunk, type HashAlgorithm } from './chunk-hash.ts';

export const MANIFEST = 'manifest.json';

export interface ManifestDisk {
  readonly index: number;
  /** File name inside the export folder. */
  readonly file: string;
  readonly sizeBytes: number;
  /** Per chunk: the hex digest, or null for an all-zero chunk (a hole, not written). */
  readonly chunks: ReadonlyArray<string | null>;
}

export interface OfflineManifest {
  readonly version: 1;
  readonly vm: string;
  /** Names this export; the coordinator's import and seed commands name it too. */
  readonly exportId: string;
  /** The journal's segment at the export: segments after it travel once imported. */
  readonly baseSeq: number;
  readonly chunkBytes: number;
  readonly algorithm: HashAlgorithm;
  /** ms since the epoch. */
  readonly createdAt: number;
  readonly disks: readonly ManifestDisk[];
}

export const diskFileName = (index: number): string => `disk-${index}.img`;

/** The digest the manifest keeps for one chunk. */
export function chunkDigest(algorithm: HashAlgorithm, data: Buffer): string | null {
  return isAllZero(data) ? null : hashChunk(algorithm, data).toString('hex');
}

/** Whether a chunk read from the copy is the one the manifest describes. */
export function chunkMatches(
  algorithm: HashAlgorithm,
  expected: string | null,
  data: Buffer,
): boolean {
  if (expected === null) return isAllZero(data);
  return hashChunk(algorithm, data).toString('hex') === expected;
}

const refused = (message: string, details: Record<string, unknown>): SecondsiteError =>
  new SecondsiteError('SS_IMPORT_INVALID', message, details);

/**
 * The manifest as read from the copy, checked against what the import expects (pure): the
 * VM, the export id when one is expected, the disk count and sizes, and chunk counts.
 */
export function checkManifest(
  raw: unknown,
  expect: { vm: string; exportId?: string; diskSizes: readonly number[]; where: string },
): OfflineManifest {
  const m = raw as Partial<OfflineManifest> | null;
  const where = expect.where;
  if (m === null || typeof m !== 'object' || m.version !== 1 || !Array.isArray(m.disks)) {
    throw refused(`${where}: not a secondsite export manifest (version 1)`, { file: where });
  }
  if (m.vm !== expect.vm) {
    throw refused(`${where} is an export of ${String(m.vm)}, not of ${expect.vm}`, {
      file: where,
      vm: m.vm,
    });
  }
  if (expect.exportId && m.exportId !== expect.exportId) {
    throw refused(
      `${where} holds export ${String(m.exportId)}, not ${expect.exportId} (an older export?); ` +
        'copy the folder of the current export',
      { file: where, exportId: m.exportId, expected: expect.exportId },
    );
  }
  if (
    typeof m.chunkBytes !== 'number' ||
    m.chunkBytes <= 0 ||
    !Number.isSafeInteger(m.baseSeq) ||
    (m.algorithm !== 'blake3' && m.algorithm !== 'sha256')
  ) {
    throw refused(`${where}: chunk size, base segment or algorithm missing`, { file: where });
  }
  const sizes = m.disks.map((d) => d.sizeBytes);
  if (sizes.join() !== expect.diskSizes.join()) {
    throw refused(
      `${where}: disk sizes ${sizes.join(', ')} differ from the replica's ${expect.diskSizes.join(', ')}`,
      { file: where, sizes, expected: expect.diskSizes },
    );
  }
  m.disks.forEach((d, i) => {
    const want = Math.ceil(d.sizeBytes / m.chunkBytes!);
    if (d.index !== i || typeof d.file !== 'string' || d.file.includes('/') || d.file === '') {
      throw refused(`${where}: disk ${i} is malformed`, { file: where, disk: i });
    }
    if (!Array.isArray(d.chunks) || d.chunks.length !== want) {
      throw refused(`${where}: disk ${i} lists ${d.chunks?.length} chunks, not ${want}`, {
        file: where,
        disk: i,
      });
    }
  });
  return m as OfflineManifest;
}

/** A copied disk file of the wrong size: an incomplete copy. */
export function sizeRefusal(file: string, actual: number, expected: number): SecondsiteError {
  return refused(`${file} is ${actual} bytes, not ${expected}: the copy is incomplete`, {
    file,
    actual,
    expected,
  });
}

/** One chunk of a copied disk file differs from its digest. */
export function chunkRefusal(file: string, chunk: number, chunkBytes: number): SecondsiteError {
  return refused(
    `${file} chunk ${chunk} (offset ${chunk * chunkBytes}) does not match its digest in the ` +
      'manifest: the copy is damaged; copy the export folder again',
    { file, chunk, offset: chunk * chunkBytes },
  );
}
