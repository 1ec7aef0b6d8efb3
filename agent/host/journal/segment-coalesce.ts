/**
 * A sealed segment as what shipping sends: its recovery point and its coalesced extents.
 * Payloads are read into memory (one segment holds one cycle of writes, at most the journal
 * cap); extents are subarrays of them.
 */
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { coalesce, type CoalesceOp, type CoalesceOptions } from './coalesce.ts';
import { RecordType, type SegmentHeader } from './segment-format.ts';
import {
  loadSegmentFile,
  scanSegment,
  scanSegmentBuffer,
  type LoadBuffer,
  type SegmentMemory,
} from './segment-reader.ts';
import type { Extent, RecoveryPointRecord, SealedSegment } from './types.ts';

export interface CoalescedSegment {
  readonly header: SegmentHeader;
  readonly point: RecoveryPointRecord;
  readonly extents: Extent[];
}

export function readCoalescedSegment(path: string, opts: CoalesceOptions = {}): CoalescedSegment {
  return coalesceScan(path, (on) => scanSegment(path, on), opts);
}

/**
 * The same, reading the file with one buffer on the thread pool (segment-reader.ts
 * `loadSegmentFile`): the sender's way, which keeps the event loop free while a large segment
 * loads. Extents are subarrays of that one buffer (of `reuse`'s memory when given: valid until
 * the next load through it).
 */
export async function loadCoalescedSegment(
  path: string,
  opts: CoalesceOptions = {},
  reuse?: LoadBuffer,
): Promise<CoalescedSegment> {
  const file = await loadSegmentFile(path, reuse);
  return coalesceScan(path, (on) => scanSegmentBuffer(file, on), opts);
}

/**
 * Copies the extents' data back to back, in order, into `into` (at least their total data
 * length) and returns extents viewing it: chunks of consecutive extents are then one view of
 * memory, shipped without concatenating (chunk-codec.ts `rawBytesOf`). Into warm, reused memory
 * the copy runs at memory speed, unlike concatenation into fresh pages per chunk.
 */
export function compactExtents(extents: readonly Extent[], into: Buffer): Extent[] {
  let at = 0;
  return extents.map((e) => {
    if (e.data === null) return e;
    e.data.copy(into, at);
    const data = into.subarray(at, at + e.data.length);
    at += e.data.length;
    return { ...e, data };
  });
}

/** Data bytes of a list of extents. */
export function dataBytes(extents: readonly Extent[]): number {
  let n = 0;
  for (const e of extents) if (e.data !== null) n += e.data.length;
  return n;
}

/**
 * A shippable segment (VmJournal.shippableSegments) loaded like `loadCoalescedSegment`: from
 * its open name while its seal is finishing, from the sealed name once it was renamed (an open
 * descriptor survives the rename, so only the open itself can miss).
 */
export async function loadShippableSegment(
  s: SealedSegment,
  reuse?: SegmentMemory,
): Promise<CoalescedSegment> {
  const seg = await loadEither(s, reuse?.file);
  const bytes = dataBytes(seg.extents);
  // Small extents laid out back to back need no concatenation per chunk; only into kept
  // memory (a large segment's extents are large writes, which travel without a copy anyway).
  if (!reuse || bytes > reuse.data.maxBytes || seg.extents.length < 2) return seg;
  return { ...seg, extents: compactExtents(seg.extents, reuse.data.take(bytes)) };
}

async function loadEither(s: SealedSegment, file?: LoadBuffer): Promise<CoalescedSegment> {
  if (s.openPath !== undefined) {
    try {
      return await loadCoalescedSegment(s.openPath, {}, file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return loadCoalescedSegment(s.path, {}, file);
}

function coalesceScan(
  path: string,
  scan: (onRecord: Parameters<typeof scanSegment>[1]) => ReturnType<typeof scanSegment>,
  opts: CoalesceOptions,
): CoalescedSegment {
  const ops: CoalesceOp[] = [];
  let point: RecoveryPointRecord | undefined;
  const summary = scan((r) => {
    if (r.type === RecordType.seal && r.seal) point = { ...r.seal, segment: 0 };
    else if (point)
      point = undefined; // a record after a SEAL: not a sealed segment
    else ops.push({ disk: r.disk, offset: r.offset, length: r.length, data: r.data });
  });
  if (!summary.header || summary.stop !== 'end' || !point) {
    throw new SecondsiteError('SS_JOURNAL_CORRUPT', `not a valid sealed segment: ${path}`, {
      path,
      stop: summary.stop,
    });
  }
  return {
    header: summary.header,
    point: { ...point, segment: summary.header.seq },
    extents: coalesce(ops, opts),
  };
}
