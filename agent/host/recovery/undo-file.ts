/**
 * Undo file I/O (format in undo-format.ts). All calls are synchronous positional I/O on the
 * replica disks and the undo file, in the order the apply protocol needs; one caller-owned
 * batch buffer is reused for every segment (LAB.md: freshly allocated memory is slow to touch).
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, constants } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Extent } from '../journal/types.ts';
import type { RawDisk } from '../vm/raw-disk.ts';
import { datasync, fsyncDirAsync, pwriteFull } from './async-io.ts';
import type { OldContentsReader, ReadRequest } from './old-contents-reader.ts';
import {
  HEADER_BYTES,
  decodeHeader,
  decodeTable,
  encodeHeader,
  encodeTable,
  fileOrder,
  undoFileBytes,
  undoFileName,
} from './undo-format.ts';
import { MAX_RUN_BYTES, planUndoRuns, runsDataBytes, type UndoRuns } from './undo-runs.ts';

/** The batch buffer must hold the header and at least one whole run. */
export const MIN_BATCH_BYTES = HEADER_BYTES + MAX_RUN_BYTES;

export interface UndoFile {
  readonly seq: number;
  readonly path: string;
  /** Size of the file on disk. */
  readonly bytes: number;
  readonly runs: UndoRuns;
}

export function undoPath(dir: string, seq: number): string {
  return join(dir, undoFileName(seq));
}

/**
 * Apply step 1: reads the current contents of every extent's range from the replica disks and
 * writes them, with checksums, to the undo file of `seq` (replacing any leftover), then fsyncs
 * the file and its folder so the file exists durably before the intent that relies on it.
 * Runs are gathered into `buffer` batch by batch: the reads of one batch go out together, the
 * batch is written with sequential writes. The fdatasync and the folder's fsync run on the
 * thread pool (async-io.ts: the event loop keeps answering the sender's keepalive meanwhile).
 */
export async function writeUndoFile(opts: {
  dir: string;
  seq: number;
  extents: readonly Extent[];
  diskCount: number;
  reader: OldContentsReader;
  buffer: Buffer;
}): Promise<UndoFile> {
  const { dir, seq, buffer } = opts;
  const runs = planUndoRuns(opts.extents, HEADER_BYTES);
  const dataBytes = runsDataBytes(runs);
  const path = undoPath(dir, seq);
  const fd = openSync(path, constants.O_CREAT | constants.O_TRUNC | constants.O_WRONLY, 0o600);
  try {
    encodeHeader({ seq, runCount: runs.count, dataBytes, diskCount: opts.diskCount }, buffer);
    let fill = HEADER_BYTES;
    let filePos = 0;
    let i = 0;
    while (i < runs.count) {
      const batch: ReadRequest[] = [];
      for (; i < runs.count && fill + runs.length[i]! <= buffer.length; i++) {
        const into = buffer.subarray(fill, fill + runs.length[i]!);
        batch.push({ disk: runs.disk[i]!, offset: runs.offset[i]!, into });
        fill += runs.length[i]!;
      }
      await opts.reader.readAll(batch);
      batch.forEach((r, k) => (runs.crc[i - batch.length + k] = crc32(r.into)));
      pwriteFull(fd, buffer.subarray(0, fill), filePos);
      filePos += fill;
      fill = 0;
    }
    pwriteFull(fd, buffer.subarray(0, fill), filePos);
    pwriteFull(fd, encodeTable(runs), filePos + fill);
    await datasync(fd);
  } finally {
    closeSync(fd);
  }
  await fsyncDirAsync(dir);
  return { seq, path, bytes: undoFileBytes({ runCount: runs.count, dataBytes }), runs };
}

/** Reads header and table (not the data) of an undo file; returns the reason when unusable. */
export function readUndoFile(path: string, seq: number, diskCount: number): UndoFile | string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (e) {
    return `cannot open: ${(e as Error).message}`;
  }
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(HEADER_BYTES);
    if (size < HEADER_BYTES) return 'file shorter than its header';
    preadFull(fd, head, 0);
    const header = decodeHeader(head);
    if (typeof header === 'string') return header;
    if (header.seq !== seq) return `header names segment ${header.seq}`;
    if (header.diskCount !== diskCount) return `header names ${header.diskCount} disks`;
    const bytes = undoFileBytes(header);
    if (size !== bytes) return `file has ${size} bytes, header says ${bytes}`;
    const table = Buffer.alloc(bytes - HEADER_BYTES - header.dataBytes);
    preadFull(fd, table, HEADER_BYTES + header.dataBytes);
    const runs = decodeTable(table, header);
    if (typeof runs === 'string') return runs;
    for (let i = 0; i < runs.count; i++) {
      if (runs.disk[i]! >= diskCount) return `run ${i} names disk ${runs.disk[i]}`;
    }
    return { seq, path, bytes, runs };
  } finally {
    closeSync(fd);
  }
}

/**
 * Calls `fn` for every run with its old contents, reading the data region sequentially in
 * batches of whole runs (the runs' data tile the region: undo-format.ts `fileOrder`).
 */
function forEachRun(file: UndoFile, buffer: Buffer, fn: (run: number, data: Buffer) => void): void {
  const { runs } = file;
  const order = fileOrder(runs);
  const fd = openSync(file.path, constants.O_RDONLY);
  try {
    let k = 0;
    while (k < order.length) {
      const start = runs.fileOffset[order[k]!]!;
      let end = k;
      let bytes = 0;
      while (end < order.length && bytes + runs.length[order[end]!]! <= buffer.length) {
        bytes += runs.length[order[end]!]!;
        end++;
      }
      preadFull(fd, buffer.subarray(0, bytes), start);
      for (; k < end; k++) {
        const i = order[k]!;
        const at = runs.fileOffset[i]! - start;
        fn(i, buffer.subarray(at, at + runs.length[i]!));
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Checks every run's checksum; throws SS_UNDO_CORRUPT naming the first bad run. */
export function verifyUndoData(file: UndoFile, buffer: Buffer): void {
  forEachRun(file, buffer, (i, data) => {
    if (crc32(data) !== file.runs.crc[i]) {
      throw new SecondsiteError(
        'SS_UNDO_CORRUPT',
        `undo data of segment ${file.seq} fails its checksum at run ${i}`,
        { seq: file.seq, run: i, path: file.path },
      );
    }
  });
}

/** Writes the undo file's old contents back onto the disks. The caller fsyncs the disks. */
export function restoreUndo(file: UndoFile, disks: readonly RawDisk[], buffer: Buffer): void {
  forEachRun(file, buffer, (i, data) => {
    disks[file.runs.disk[i]!]!.writeSync(file.runs.offset[i]!, data);
  });
}

/** Reads `into.length` bytes of an open undo file at `position`. */
export function preadFull(fd: number, into: Buffer, position: number): void {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n === 0)
      throw new SecondsiteError('SS_UNDO_CORRUPT', 'undo file is shorter than its table');
    done += n;
  }
}

/** Makes a created or deleted directory entry durable. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
