/**
 * Opening a VM journal after any stop, clean or kill -9 at any instant.
 *
 * Invariants the write path keeps (vm-journal.ts):
 * 1. A record reaches the segment before its operation reaches the disk (at the next cut or
 *    close, or at once while resync-required), so the disks never hold an operation the
 *    journal lacks (up to page-cache loss in a host crash, see 4).
 * 2. A segment is renamed `.seg` only after its SEAL record was fdatasynced, its operations
 *    applied to the disks and the disks fdatasynced: a sealed segment is on stable storage.
 *    FLUSH and FUA fdatasync only the unsealed segments: until its segment is sealed, the
 *    journal is the durable copy of a write.
 * 3. Segment N+1 is created only after N's SEAL is appended; hence only the newest `.active`
 *    may lack a SEAL, and older `.active` files are cuts whose rename was interrupted.
 * 4. The state file names the boot the journal was opened in until a clean close. Found open
 *    from another boot, the host went down and its page cache may have reached the files in
 *    any order: the journal cannot prove what the disks hold, so the VM goes to
 *    resync-required with every block dirty (a full hash comparison, nothing copied blindly).
 *
 * Recovery therefore replays every `.active` segment from its start onto the disks, after
 * cutting each one's torn tail (replaying the same operations in the same order is idempotent;
 * no checkpoint is kept: an active segment holds one cycle of writes, at most the journal cap,
 * and a cheaper replay is not worth another file to keep crash-safe), fsyncs the disks, then
 * finishes the interrupted seals and reopens the newest unsealed segment for appending.
 * Sealed segments are only checked (their SEAL record read from the file's end).
 */
import { mkdirSync, renameSync, rmSync, statSync, truncateSync } from 'node:fs';
import type { Logger } from '../../../common/log/log.ts';
import type { Clock } from '../../../common/time/clock.ts';
import type { RawDisk } from '../vm/raw-disk.ts';
import { DirtyBitmap } from './dirty-bitmap.ts';
import {
  fsyncDir,
  listSegments,
  listTempFiles,
  segmentPath,
  type SegmentFile,
} from './journal-dir.ts';
import { fullDiskRanges, enterResyncRequired, reopenResyncRequired } from './journal-resync.ts';
import { currentBootId, readStateFile, writeStateFile } from './journal-state.ts';
import { RecordType } from './segment-format.ts';
import { readSeal, scanSegment, type SegmentRecord } from './segment-reader.ts';
import { SegmentWriter } from './segment-writer.ts';
import type { JournalState, SealedSegment } from './types.ts';

export interface RecoverOptions {
  readonly dir: string;
  readonly vmId: string;
  readonly disks: readonly RawDisk[];
  readonly clock: Clock;
  readonly log: Logger;
}

export interface RecoveredJournal {
  readonly state: JournalState;
  readonly sealed: SealedSegment[];
  /** The segment to append to (journaling only). */
  readonly active: SegmentWriter | undefined;
  readonly bitmap: DirtyBitmap | undefined;
  /** Lowest seq never handed out. */
  readonly nextSeq: number;
  readonly bootId: string | undefined;
}

interface ReplayStats {
  records: number;
  tailCutBytes: number;
  sealedAtOpen: number;
}

class CorruptJournal extends Error {}

export function recoverJournal(o: RecoverOptions): RecoveredJournal {
  mkdirSync(o.dir, { recursive: true });
  for (const tmp of listTempFiles(o.dir)) rmSync(tmp, { force: true });
  const stateFile = readStateFile(o.dir);
  const files = listSegments(o.dir);
  const bootId = currentBootId();
  const nextSeq = Math.max(stateFile?.nextSeq ?? 1, (files.at(-1)?.seq ?? 0) + 1);
  if (stateFile?.state === 'resync-required') {
    return reopenResync(o, files, nextSeq, bootId);
  }
  DirtyBitmap.remove(o.dir); // left over from an interrupted reset or overflow: not in force
  const crashedHost =
    stateFile?.openBootId !== undefined && bootId !== undefined && stateFile.openBootId !== bootId;
  const stats: ReplayStats = { records: 0, tailCutBytes: 0, sealedAtOpen: 0 };
  let result: { sealed: SealedSegment[]; active: SegmentWriter | undefined };
  try {
    result = replayAll(o, files, stats);
  } catch (e) {
    if (!(e instanceof CorruptJournal)) throw e;
    return dropToFullResync(o, nextSeq, bootId, e.message);
  }
  if (crashedHost) {
    // Replayed first all the same: flushed writes may live only in the journal.
    result.active?.close();
    return dropToFullResync(o, nextSeq, bootId, 'host went down with the journal open');
  }
  const active =
    result.active ??
    SegmentWriter.create(segmentPath(o.dir, nextSeq, 'active'), {
      seq: nextSeq,
      vmId: o.vmId,
      created: o.clock.now(),
    });
  active.syncSync();
  fsyncDir(o.dir);
  writeStateFile(o.dir, {
    version: 1,
    state: 'journaling',
    nextSeq: active.seq + 1,
    openBootId: bootId,
  });
  o.log.info(
    {
      replayedRecords: stats.records,
      tailCutBytes: stats.tailCutBytes,
      sealedAtOpen: stats.sealedAtOpen,
      sealedSegments: result.sealed.length,
      activeSegment: active.seq,
    },
    'journal opened',
  );
  return {
    state: 'journaling',
    sealed: result.sealed,
    active,
    bitmap: undefined,
    nextSeq: active.seq + 1,
    bootId,
  };
}

function replayAll(
  o: RecoverOptions,
  files: SegmentFile[],
  stats: ReplayStats,
): { sealed: SealedSegment[]; active: SegmentWriter | undefined } {
  const sealed: SealedSegment[] = [];
  const toSeal: SegmentFile[] = [];
  let open: { file: SegmentFile; validLength: number; records: number } | undefined;
  for (const [i, f] of files.entries()) {
    if (open)
      throw new CorruptJournal(`segment ${open.file.seq} unsealed but followed by ${f.seq}`);
    if (f.state === 'sealed') {
      sealed.push(checkSealed(o, f));
      continue;
    }
    const r = replaySegment(o, f, i === files.length - 1, stats);
    if (r.sealed) toSeal.push(f);
    else open = { file: f, validLength: r.validLength, records: r.records };
  }
  for (const d of o.disks) d.syncSync();
  for (const f of toSeal) {
    const to = segmentPath(o.dir, f.seq, 'sealed');
    renameSync(f.path, to);
    sealed.push(checkSealed(o, { ...f, state: 'sealed', path: to }));
    stats.sealedAtOpen++;
  }
  sealed.sort((a, b) => a.seq - b.seq);
  return { sealed, active: open && reopenActive(o, open.file, open.validLength, open.records) };
}

function reopenActive(o: RecoverOptions, f: SegmentFile, validLength: number, records: number) {
  if (validLength > 0) return SegmentWriter.reopen(f.path, f.seq, validLength, records + 1);
  // Torn while being created: nothing in it reached a disk (invariant 1); start it afresh.
  return SegmentWriter.create(f.path, { seq: f.seq, vmId: o.vmId, created: o.clock.now() });
}

function checkSealed(o: RecoverOptions, f: SegmentFile): SealedSegment {
  const s = readSeal(f.path);
  if (!s || s.header.seq !== f.seq || s.header.vmId !== o.vmId) {
    throw new CorruptJournal(`sealed segment ${f.seq} has no valid seal`);
  }
  const bytes = statSize(f.path);
  return { seq: f.seq, path: f.path, bytes, point: { ...s.seal, segment: f.seq } };
}

/** Replays one active segment onto the disks and cuts its torn tail. */
function replaySegment(
  o: RecoverOptions,
  f: SegmentFile,
  isLast: boolean,
  stats: ReplayStats,
): { sealed: boolean; validLength: number; records: number } {
  const summary = scanSegment(f.path, (r) => applyRecord(o.disks, r));
  if (!summary.header) {
    if (!isLast) throw new CorruptJournal(`segment ${f.seq} has no valid header`);
    stats.tailCutBytes += summary.fileLength;
    return { sealed: false, validLength: 0, records: 0 };
  }
  if (summary.header.seq !== f.seq || summary.header.vmId !== o.vmId) {
    throw new CorruptJournal(
      `segment ${f.seq} belongs to ${summary.header.vmId}/${summary.header.seq}`,
    );
  }
  stats.records += summary.records;
  if (summary.validLength < summary.fileLength) {
    truncateSync(f.path, summary.validLength);
    stats.tailCutBytes += summary.fileLength - summary.validLength;
    o.log.warn(
      { segment: f.seq, stop: summary.stop, cutBytes: summary.fileLength - summary.validLength },
      'journal tail cut',
    );
  }
  const sealed = summary.lastType === RecordType.seal;
  if (!sealed && !isLast) throw new CorruptJournal(`segment ${f.seq} unsealed but not the newest`);
  return { sealed, validLength: summary.validLength, records: summary.records };
}

function applyRecord(disks: readonly RawDisk[], r: SegmentRecord): void {
  if (r.type === RecordType.seal) return;
  const disk = disks[r.disk];
  if (!disk || r.offset + r.length > disk.size) {
    throw new CorruptJournal(
      `record for disk ${r.disk} at ${r.offset}+${r.length} is out of range`,
    );
  }
  if (r.type === RecordType.write && r.data) disk.writeSync(r.offset, r.data);
  else disk.zeroSync(r.offset, r.length);
}

function reopenResync(
  o: RecoverOptions,
  files: SegmentFile[],
  nextSeq: number,
  bootId: string | undefined,
): RecoveredJournal {
  const { bitmap, rebuilt } = reopenResyncRequired({
    dir: o.dir,
    diskSizes: o.disks.map((d) => d.size),
    segmentPaths: files.map((f) => f.path),
    nextSeq,
    bootId,
  });
  if (rebuilt) o.log.error('dirty bitmap unreadable: every block marked dirty');
  o.log.warn('journal opened in resync-required: changes tracked in the dirty bitmap');
  return { state: 'resync-required', sealed: [], active: undefined, bitmap, nextSeq, bootId };
}

/** The journal cannot vouch for the disks: track every block as dirty (a full comparison). */
function dropToFullResync(
  o: RecoverOptions,
  nextSeq: number,
  bootId: string | undefined,
  reason: string,
): RecoveredJournal {
  const diskSizes = o.disks.map((d) => d.size);
  for (const d of o.disks) d.syncSync();
  const bitmap = enterResyncRequired({
    dir: o.dir,
    diskSizes,
    ranges: fullDiskRanges(diskSizes),
    segmentPaths: listSegments(o.dir).map((f) => f.path),
    nextSeq,
    bootId,
  });
  o.log.error({ reason }, 'journal cannot be trusted: resync required, every block dirty');
  return { state: 'resync-required', sealed: [], active: undefined, bitmap, nextSeq, bootId };
}

function statSize(path: string): number {
  return statSync(path).size;
}
