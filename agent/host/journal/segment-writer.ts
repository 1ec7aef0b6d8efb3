/**
 * Appends records to one segment file (and reads payloads back for the overlay, see
 * overlay-map-pure.ts). Every append is one synchronous positional writev of header + payload
 * (no payload copy), so the journal's order is the order of the calls.
 */
import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  ftruncateSync,
  openSync,
  readSync,
  writevSync,
  constants,
} from 'node:fs';
import {
  RECORD_HEADER_BYTES,
  RecordType,
  encodeRecordHeader,
  encodeSealPayload,
  encodeSegmentHeader,
  type RecordTypeCode,
  type SealInfo,
} from './segment-format.ts';

export class SegmentWriter {
  readonly seq: number;
  readonly path: string;
  /** Set when the segment was given up (journal overflow): a pending seal must not finish. */
  dropped = false;
  private fd: number | undefined;
  private end: number;
  private nextRecordSeq: number;
  private readonly header = Buffer.alloc(RECORD_HEADER_BYTES);
  /** Bytes appended since the last fdatasync began. */
  private unsynced = 0;
  /** A background fdatasync (`trickle`) in flight. */
  private trickling: Promise<void> | undefined;
  /** close() came while a background fdatasync held the descriptor. */
  private closeWhenIdle = false;

  private constructor(path: string, seq: number, fd: number, end: number, nextRecordSeq: number) {
    this.path = path;
    this.seq = seq;
    this.fd = fd;
    this.end = end;
    this.nextRecordSeq = nextRecordSeq;
  }

  /**
   * Creates (or replaces) the file with a fresh header. Not fsynced here: the next flush or
   * seal makes it durable, and recovery rewrites an active segment whose header is torn.
   */
  static create(path: string, h: { seq: number; vmId: string; created: number }): SegmentWriter {
    const fd = openSync(path, constants.O_CREAT | constants.O_TRUNC | constants.O_RDWR, 0o600);
    try {
      const head = encodeSegmentHeader(h);
      writeFully(fd, [head], 0);
      return new SegmentWriter(path, h.seq, fd, head.length, 1);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** Reopens a recovered segment for appending after its last valid record. */
  static reopen(path: string, seq: number, validLength: number, nextRecordSeq: number) {
    const fd = openSync(path, constants.O_RDWR);
    try {
      ftruncateSync(fd, validLength);
      return new SegmentWriter(path, seq, fd, validLength, nextRecordSeq);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** Bytes in the file, header included. */
  get bytes(): number {
    return this.end;
  }

  /** Size on disk of a record with this payload length. */
  static recordBytes(payloadLength: number): number {
    return RECORD_HEADER_BYTES + payloadLength;
  }

  /** Appends one record; returns the file position of its payload. */
  append(
    type: RecordTypeCode,
    disk: number,
    offset: number,
    length: number,
    payload: Buffer | null,
    flags = 0,
  ): number {
    const fd = this.handle();
    const payloadAt = this.end + RECORD_HEADER_BYTES;
    const head = encodeRecordHeader(
      this.header,
      { type, flags, recordSeq: this.nextRecordSeq, disk, offset, length },
      payload,
    );
    const parts = payload && payload.length > 0 ? [head, payload] : [head];
    let written: number;
    try {
      written = writeFully(fd, parts, this.end);
    } catch (e) {
      // Leave no half record behind: the next append would otherwise sit after garbage and be
      // lost to the reader, which stops at the first invalid record.
      try {
        ftruncateSync(fd, this.end);
      } catch {
        // the original error is the one to report
      }
      throw e;
    }
    this.end += written;
    this.unsynced += written;
    this.nextRecordSeq++;
    return payloadAt;
  }

  appendSeal(seal: SealInfo): void {
    this.append(RecordType.seal, 0, 0, 0, encodeSealPayload(seal));
  }

  /** Reads back journaled bytes (the newest data of a range not yet applied to its disk). */
  readInto(into: Buffer, position: number): void {
    const fd = this.handle();
    let done = 0;
    while (done < into.length) {
      const n = readSync(fd, into, done, into.length - done, position + done);
      if (n === 0) throw new Error(`segment ${this.seq} ends before ${position + into.length}`);
      done += n;
    }
  }

  syncSync(): void {
    this.unsynced = 0;
    fdatasyncSync(this.handle());
  }

  /** fdatasync on the thread pool, so that a cut does not stall the VMs' other I/O. */
  async sync(): Promise<void> {
    const fd = this.handle();
    this.unsynced = 0;
    await new Promise<void>((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve())));
  }

  /**
   * Starts a background fdatasync once `threshold` bytes were appended since the last one
   * began (one at a time). Durability still comes only from FLUSH/FUA and the seal; this keeps
   * the dirty part of a busy segment small, so the seal's fdatasync at a cut (which a live
   * sender waits for) has little left to write. Failures are left to those syncs to report.
   */
  trickle(threshold: number): void {
    if (this.unsynced < threshold || this.trickling || this.fd === undefined) return;
    this.trickling = this.sync()
      .catch(() => undefined)
      .finally(() => {
        this.trickling = undefined;
        if (this.closeWhenIdle) this.close();
      });
  }

  close(): void {
    if (this.fd === undefined) return;
    if (this.trickling) {
      // The thread pool still uses the descriptor: close it when that fdatasync returns.
      this.closeWhenIdle = true;
      return;
    }
    const fd = this.fd;
    this.fd = undefined;
    closeSync(fd);
  }

  private handle(): number {
    if (this.fd === undefined) throw new Error(`segment ${this.seq} is closed`);
    return this.fd;
  }
}

/** writev until everything is written (a short write is legal); returns the bytes written. */
function writeFully(fd: number, parts: Buffer[], position: number): number {
  const total = parts.reduce((n, p) => n + p.length, 0);
  let done = writevSync(fd, parts, position);
  while (done < total) {
    let skip = done;
    const rest: Buffer[] = [];
    for (const p of parts) {
      if (skip >= p.length) {
        skip -= p.length;
        continue;
      }
      rest.push(skip > 0 ? p.subarray(skip) : p);
      skip = 0;
    }
    done += writevSync(fd, rest, position + done);
  }
  return total;
}
