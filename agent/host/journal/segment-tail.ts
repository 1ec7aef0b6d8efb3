/**
 * Reads a segment while the journal is still writing it, for live shipping: each `read` takes
 * the whole records between where the previous one stopped and a length the journal reported
 * (VmJournal.liveSegment().written, or the file's size once the segment is shippable), as
 * extents in write order. Its own descriptor: the seal's rename does not disturb it.
 *
 * Every record passes the same checks as a scan of a sealed file (segment-reader.ts); a record
 * that fails them stops the tail with SS_IO, because the journal only ever appends whole,
 * valid records below `written`.
 *
 * Reads are synchronous, like the journal's own appends: a read is a page-cache copy of at
 * most a few MiB, and at the cut it lets the sender send the segment's end within the same
 * turn of the event loop that woke it, instead of once per I/O callback behind the journal's
 * catch-up slices.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import {
  RECORD_HEADER_BYTES,
  RecordType,
  SEGMENT_HEADER_BYTES,
  decodeRecordHeader,
  decodeSegmentHeader,
  type SealInfo,
} from './segment-format.ts';
import { scanRecordWindow } from './segment-reader.ts';
import type { Extent } from './types.ts';

export interface TailRead {
  /** The records' changes in write order; `data === null` reads as zeros (TRIM, ZEROES). */
  readonly extents: Extent[];
  /** Set when the SEAL record was read: the segment's recovery point (no record follows it). */
  readonly seal?: SealInfo;
  /** File bytes consumed. */
  readonly bytes: number;
}

export class SegmentTail {
  private pos = SEGMENT_HEADER_BYTES;
  private nextRecord = 1;
  private sealed = false;

  private constructor(
    private readonly fd: number,
    readonly seq: number,
  ) {}

  /** Opens segment `seq` at `path` and checks its header. */
  static open(path: string, seq: number): SegmentTail {
    const fd = openSync(path, 'r');
    try {
      const head = Buffer.alloc(SEGMENT_HEADER_BYTES);
      const bytesRead = readSync(fd, head, 0, head.length, 0);
      const h = bytesRead === head.length ? decodeSegmentHeader(head) : undefined;
      if (!h || h.seq !== seq) {
        throw new SecondsiteError('SS_IO', `segment file ${path} is not segment ${seq}`, {
          path,
          seq,
        });
      }
      return new SegmentTail(fd, seq);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** File position of the next record to read. */
  get position(): number {
    return this.pos;
  }

  /** The file's current size (all of it is whole records once the segment is shippable). */
  size(): number {
    return fstatSync(this.fd).size;
  }

  /**
   * The whole records in [position, limit), reading at most about `maxBytes` of the file (more
   * only when a single record is larger). Fresh memory each time: the extents view it.
   */
  read(limit: number, maxBytes: number): TailRead {
    if (limit <= this.pos || this.sealed) return { extents: [], bytes: 0 };
    let window = this.readAt(this.pos, Math.min(limit - this.pos, maxBytes));
    if (window.length >= RECORD_HEADER_BYTES) {
      // A record longer than the window: read exactly that record.
      const h = decodeRecordHeader(window.subarray(0, RECORD_HEADER_BYTES));
      const whole = h ? RECORD_HEADER_BYTES + h.payloadLength : 0;
      if (whole > window.length && this.pos + whole <= limit) {
        window = this.readAt(this.pos, whole);
      }
    }
    const extents: Extent[] = [];
    let seal: SealInfo | undefined;
    const scan = scanRecordWindow(window, this.pos, this.nextRecord, (r) => {
      if (r.type === RecordType.seal) seal = r.seal;
      else if (r.type === RecordType.write) {
        extents.push({ disk: r.disk, offset: r.offset, length: r.length, data: r.data });
      } else extents.push({ disk: r.disk, offset: r.offset, length: r.length, data: null });
    });
    if (scan.stop === 'invalid' || scan.stop === 'bad-crc' || (seal && scan.stop !== 'end')) {
      throw new SecondsiteError(
        'SS_IO',
        `segment ${this.seq}: record ${this.nextRecord + scan.records} at ${scan.pos} is damaged`,
        { seq: this.seq, position: scan.pos, stop: scan.stop },
      );
    }
    const bytes = scan.pos - this.pos;
    this.pos = scan.pos;
    this.nextRecord += scan.records;
    if (seal) this.sealed = true;
    return seal ? { extents, seal, bytes } : { extents, bytes };
  }

  close(): void {
    closeSync(this.fd);
  }

  private readAt(position: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const bytesRead = readSync(this.fd, buf, done, length - done, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === length ? buf : buf.subarray(0, done);
  }
}
