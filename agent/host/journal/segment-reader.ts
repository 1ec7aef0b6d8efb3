/**
 * Reads segment files. A scan trusts nothing: it stops at the first record that is short,
 * malformed, out of sequence or fails its CRC, and reports how many bytes were valid, so that
 * recovery can cut a torn tail and shipping never sends a record twice or half.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import {
  RECORD_HEADER_BYTES,
  RecordType,
  SEAL_RECORD_BYTES,
  SEGMENT_HEADER_BYTES,
  decodeRecordHeader,
  decodeSealPayload,
  decodeSegmentHeader,
  recordCrc,
  type RecordHeader,
  type SealInfo,
  type SegmentHeader,
} from './segment-format.ts';

export interface SegmentRecord extends RecordHeader {
  /** WRITE payload (null for other types, and for WRITEs when scanning without payloads). */
  readonly data: Buffer | null;
  readonly seal?: SealInfo;
  /** Where the record's header starts in the file (its payload follows the 48 header bytes). */
  readonly fileOffset: number;
}

export type ScanStop =
  | 'end' // the file ends exactly after a valid record
  | 'bad-header' // the segment header itself is missing or invalid
  | 'torn' // a record is cut short by the end of the file
  | 'invalid' // bad magic, type, length or record seq
  | 'bad-crc';

export interface ScanSummary {
  readonly header: SegmentHeader | undefined;
  /** Bytes from the file start through the last valid record (0 if the header is invalid). */
  readonly validLength: number;
  readonly fileLength: number;
  readonly records: number;
  readonly lastType: RecordHeader['type'] | undefined;
  readonly stop: ScanStop;
}

export interface ScanOptions {
  /**
   * Read WRITE payloads and check every CRC (default true). false reads only record headers:
   * for segments already known valid (sealed, or an active one up to its recovered length)
   * when only the touched ranges matter.
   */
  readonly payloads?: boolean;
  /** Stop after this many bytes of the file (a recovered valid length). */
  readonly limit?: number;
}

export function scanSegment(
  path: string,
  onRecord: (r: SegmentRecord) => void,
  opts: ScanOptions = {},
): ScanSummary {
  const fd = openSync(path, 'r');
  try {
    return scanSource(fdSource(fd), onRecord, opts);
  } finally {
    closeSync(fd);
  }
}

/**
 * The same scan over a whole segment file already in memory (`loadSegmentFile`): payloads
 * are subarrays of `file`, no copies and no system calls.
 */
export function scanSegmentBuffer(
  file: Buffer,
  onRecord: (r: SegmentRecord) => void,
  opts: ScanOptions = {},
): ScanSummary {
  return scanSource(bufferSource(file), onRecord, opts);
}

/** Bytes per read call when loading a whole segment. */
const LOAD_SLICE = 8 << 20;

/**
 * Memory a caller lends to `loadSegmentFile` to be filled again and again: freshly allocated
 * pages cost about 1 GB/s on first touch here (LAB.md), a fifth of a cycle's time in
 * delta-1pct. Only segments up to `maxBytes` reuse it (a big first-fill segment must not pin
 * its size in memory for good); the caller must be done with the previous load's bytes.
 */
export class LoadBuffer {
  private buf: Buffer | undefined;

  constructor(readonly maxBytes = 64 << 20) {}

  /** `size` bytes to fill: the kept buffer when it fits, else a new one (kept if small). */
  take(size: number): Buffer {
    if (size > this.maxBytes) return Buffer.allocUnsafe(size);
    if (!this.buf || this.buf.length < size) this.buf = Buffer.allocUnsafe(size);
    return this.buf.subarray(0, size);
  }
}

/** The memory one segment in flight uses: the file as read, and its compacted extents. */
export interface SegmentMemory {
  readonly file: LoadBuffer;
  readonly data: LoadBuffer;
}

/**
 * A host's reusable segment memory, shared by its senders: at most `slots` segments in flight
 * at once load into kept memory (each slot up to 2 × `maxBytes`); a sender that finds none free
 * loads into fresh memory as before. So a host with many VMs keeps at most slots × 2 × maxBytes,
 * not that much per VM.
 */
export class SegmentMemoryPool {
  private readonly free: SegmentMemory[] = [];

  constructor(slots = 2, maxBytes = 64 << 20) {
    for (let i = 0; i < slots; i++) {
      this.free.push({ file: new LoadBuffer(maxBytes), data: new LoadBuffer(maxBytes) });
    }
  }

  /** A slot for one segment, until `giveBack`; undefined when all are in use. */
  borrow(): SegmentMemory | undefined {
    return this.free.pop();
  }

  /**
   * Returns a slot. `clean` false (the segment's stream failed, so a frame viewing it might
   * still be queued somewhere): the slot is dropped and a new one takes its place.
   */
  giveBack(m: SegmentMemory, clean: boolean): void {
    this.free.push(
      clean ? m : { file: new LoadBuffer(m.file.maxBytes), data: new LoadBuffer(m.data.maxBytes) },
    );
  }
}

/**
 * Reads a whole segment file into one buffer with reads on the thread pool, so loading a
 * large segment (a cycle of writes, up to the journal cap) does not stop the event loop
 * (NBD service, keepalive answers) the way record-by-record synchronous reads did. With
 * `reuse`, the bytes live in its memory until the next load through it.
 */
export async function loadSegmentFile(path: string, reuse?: LoadBuffer): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const buf = reuse ? reuse.take(size) : Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await fh.read(buf, done, Math.min(LOAD_SLICE, size - done), done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === size ? buf : buf.subarray(0, done);
  } finally {
    await fh.close();
  }
}

/** Where a scan reads from: a file descriptor or a buffer. */
interface ByteSource {
  readonly length: number;
  /** `length` bytes at `position`, fewer at the end. */
  at(position: number, length: number): Buffer;
}

function fdSource(fd: number): ByteSource {
  return { length: fstatSync(fd).size, at: (pos, len) => readAt(fd, pos, len) };
}

function bufferSource(file: Buffer): ByteSource {
  return {
    length: file.length,
    at: (pos, len) => file.subarray(pos, Math.min(file.length, pos + len)),
  };
}

function scanSource(
  src: ByteSource,
  onRecord: (r: SegmentRecord) => void,
  opts: ScanOptions,
): ScanSummary {
  const verify = opts.payloads ?? true;
  const fileLength = Math.min(src.length, opts.limit ?? Infinity);
  const header = decodeSegmentHeader(src.at(0, SEGMENT_HEADER_BYTES));
  const summary = (pos: number, records: number, lastType: number | undefined, stop: ScanStop) =>
    ({
      header,
      validLength: pos,
      fileLength,
      records,
      lastType: lastType as RecordHeader['type'] | undefined,
      stop,
    }) satisfies ScanSummary;
  if (!header) return summary(0, 0, undefined, 'bad-header');
  const r = scanRecords(src, SEGMENT_HEADER_BYTES, 1, fileLength, verify, onRecord);
  return summary(r.pos, r.records, r.lastType, r.stop);
}

/** Where a record scan stopped: before the first record it did not take. */
interface RecordScan {
  readonly pos: number;
  readonly records: number;
  readonly lastType: number | undefined;
  readonly stop: ScanStop;
}

/** Records from `pos` (record seq `firstSeq`) up to `fileLength`, each checked as scanSource says. */
function scanRecords(
  src: ByteSource,
  start: number,
  firstSeq: number,
  fileLength: number,
  verify: boolean,
  onRecord: (r: SegmentRecord) => void,
): RecordScan {
  let pos = start;
  let records = 0;
  let lastType: number | undefined;
  const stop = (why: ScanStop): RecordScan => ({ pos, records, lastType, stop: why });
  for (;;) {
    if (pos === fileLength) return stop('end');
    if (pos + RECORD_HEADER_BYTES > fileLength) return stop('torn');
    const headBuf = src.at(pos, RECORD_HEADER_BYTES);
    const h = decodeRecordHeader(headBuf);
    if (!h || h.recordSeq !== firstSeq + records) return stop('invalid');
    const end = pos + RECORD_HEADER_BYTES + h.payloadLength;
    if (end > fileLength) return stop('torn');
    const needPayload = verify || h.type === RecordType.seal;
    const payload =
      needPayload && h.payloadLength > 0
        ? src.at(pos + RECORD_HEADER_BYTES, h.payloadLength)
        : null;
    if (verify && recordCrc(headBuf, payload) !== h.crc) return stop('bad-crc');
    const seal = h.type === RecordType.seal && payload ? decodeSealPayload(payload) : undefined;
    if (h.type === RecordType.seal && !seal) return stop('invalid');
    const data = h.type === RecordType.write ? payload : null;
    onRecord(seal ? { ...h, data, seal, fileOffset: pos } : { ...h, data, fileOffset: pos });
    records++;
    lastType = h.type;
    pos = end;
  }
}

/**
 * Whole records in `window`, which holds the file's bytes from position `base` on; the first
 * must be record number `firstSeq`. Payloads are subarrays of `window`, every CRC is checked.
 * For reading a segment while it is still written (live shipping): a record cut off by the
 * window's end stops the scan as 'torn' and is read again with the next window.
 */
export function scanRecordWindow(
  window: Buffer,
  base: number,
  firstSeq: number,
  onRecord: (r: SegmentRecord) => void,
): RecordScan {
  const src: ByteSource = {
    length: base + window.length,
    at: (pos, len) => window.subarray(pos - base, Math.min(window.length, pos - base + len)),
  };
  return scanRecords(src, base, firstSeq, base + window.length, true, onRecord);
}

/** Every valid record of a segment plus the scan summary (tests and small segments). */
export function readSegment(
  path: string,
  opts: ScanOptions = {},
): { summary: ScanSummary; records: SegmentRecord[] } {
  const records: SegmentRecord[] = [];
  const summary = scanSegment(path, (r) => records.push(r), opts);
  return { summary, records };
}

/**
 * The recovery point of a sealed segment, read from its fixed-size final SEAL record without
 * scanning the file. Undefined if the file does not end with a valid SEAL.
 */
export function readSeal(path: string): { header: SegmentHeader; seal: SealInfo } | undefined {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const header = decodeSegmentHeader(readAt(fd, 0, SEGMENT_HEADER_BYTES));
    if (!header || size < SEGMENT_HEADER_BYTES + SEAL_RECORD_BYTES) return undefined;
    const rec = readAt(fd, size - SEAL_RECORD_BYTES, SEAL_RECORD_BYTES);
    const h = decodeRecordHeader(rec);
    if (!h || h.type !== RecordType.seal) return undefined;
    const payload = rec.subarray(RECORD_HEADER_BYTES);
    if (recordCrc(rec, payload) !== h.crc) return undefined;
    const seal = decodeSealPayload(payload);
    return seal ? { header, seal } : undefined;
  } finally {
    closeSync(fd);
  }
}

function readAt(fd: number, position: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  const n = readInto(fd, b, position);
  return n === length ? b : b.subarray(0, n);
}

function readInto(fd: number, into: Buffer, position: number): number {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}
