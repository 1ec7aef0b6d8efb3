/**
 * The on-disk journal segment: one file per cycle, `<journalDir>/<seq, 12 digits>.<state>`.
 * A segment is `active` while it takes writes and `seg` once sealed (see journal-dir.ts).
 * All integers are little-endian. Pure encode/decode: no file I/O here.
 *
 * File header, 128 bytes, written once when the segment is created:
 *
 *   off size field
 *     0    4 magic "SSJS"
 *     4    2 format version (1)
 *     6    2 header length (128)
 *     8    8 segment seq (from 1, never reused by a VM)
 *    16    8 created, ms since the epoch
 *    24    2 vm id length n (≤ 96)
 *    26   96 vm id, UTF-8, zero padded
 *   122    2 reserved (0)
 *   124    4 CRC32 of bytes 0..123
 *
 * Then records, back to back. Record header, 48 bytes:
 *
 *   off size field
 *     0    4 magic "SSJR"
 *     4    1 type: 1 WRITE, 2 TRIM, 3 ZERO, 4 SEAL
 *     5    1 flags: bit 0 = FUA (informational)
 *     6    2 reserved (0)
 *     8    8 record seq, 1, 2, 3… within the segment (a gap or repeat ends the valid journal)
 *    16    4 disk index
 *    20    4 payload length p (WRITE: = length; TRIM/ZERO: 0; SEAL: 464)
 *    24    8 disk offset
 *    32    8 length in bytes on the disk (0 for SEAL)
 *    40    4 reserved (0)
 *    44    4 CRC32 of header bytes 0..43, continued over the payload
 *
 * A WRITE's payload is the data. A SEAL's payload has a fixed size so that a sealed segment's
 * recovery point can be read from its last SEAL_RECORD_BYTES (512) without scanning it:
 *
 *   off size field
 *     0    8 cut time, ms since the epoch
 *     8    1 type: 1 crash-consistent, 2 app-consistent
 *     9    1 reserved
 *    10    2 recovery point id length (≤ 64)
 *    12    2 freezeFailed length (0 = none; ≤ 384, longer reasons are cut at a UTF-8 boundary)
 *    14   64 id, UTF-8, zero padded
 *    78  384 freezeFailed, UTF-8, zero padded
 *   462    2 reserved
 *
 * The writer hands header and payload to one writev, so a record is rarely torn; the reader
 * still trusts nothing: the first record with a short read, a bad magic, type, length, seq or
 * CRC ends the valid part of the segment.
 */
import { crc32 } from 'node:zlib';
import type { RecoveryPointRecord, RecoveryPointType } from './types.ts';

export const SEGMENT_MAGIC = 0x534a5353; // "SSJS" read as little-endian u32
export const RECORD_MAGIC = 0x524a5353; // "SSJR"
export const FORMAT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 128;
export const RECORD_HEADER_BYTES = 48;
export const SEAL_PAYLOAD_BYTES = 464;
export const SEAL_RECORD_BYTES = RECORD_HEADER_BYTES + SEAL_PAYLOAD_BYTES;
const VM_ID_MAX = 96;
const POINT_ID_MAX = 64;
const REASON_MAX = 384;

export const RecordType = { write: 1, trim: 2, zero: 3, seal: 4 } as const;
export type RecordTypeCode = (typeof RecordType)[keyof typeof RecordType];
export const FLAG_FUA = 1;

export interface SegmentHeader {
  readonly version: number;
  readonly seq: number;
  readonly created: number;
  readonly vmId: string;
}

export interface RecordHeader {
  readonly type: RecordTypeCode;
  readonly flags: number;
  readonly recordSeq: number;
  readonly disk: number;
  readonly payloadLength: number;
  readonly offset: number;
  readonly length: number;
  readonly crc: number;
}

/** What a SEAL record carries: the recovery point minus the segment seq (the file has it). */
export type SealInfo = Omit<RecoveryPointRecord, 'segment'>;

export function encodeSegmentHeader(h: Omit<SegmentHeader, 'version'>): Buffer {
  const vm = Buffer.from(h.vmId, 'utf8');
  if (vm.length > VM_ID_MAX) throw new RangeError(`vm id longer than ${VM_ID_MAX} bytes`);
  const b = Buffer.alloc(SEGMENT_HEADER_BYTES);
  b.writeUInt32LE(SEGMENT_MAGIC, 0);
  b.writeUInt16LE(FORMAT_VERSION, 4);
  b.writeUInt16LE(SEGMENT_HEADER_BYTES, 6);
  b.writeBigUInt64LE(BigInt(h.seq), 8);
  b.writeBigUInt64LE(BigInt(h.created), 16);
  b.writeUInt16LE(vm.length, 24);
  vm.copy(b, 26);
  b.writeUInt32LE(crc32(b.subarray(0, 124)), 124);
  return b;
}

/** Returns undefined for anything but a complete, valid header of a known version. */
export function decodeSegmentHeader(b: Buffer): SegmentHeader | undefined {
  if (b.length < SEGMENT_HEADER_BYTES) return undefined;
  if (b.readUInt32LE(0) !== SEGMENT_MAGIC) return undefined;
  if (b.readUInt32LE(124) !== crc32(b.subarray(0, 124))) return undefined;
  const version = b.readUInt16LE(4);
  if (version !== FORMAT_VERSION || b.readUInt16LE(6) !== SEGMENT_HEADER_BYTES) return undefined;
  const vmLength = b.readUInt16LE(24);
  if (vmLength > VM_ID_MAX) return undefined;
  return {
    version,
    seq: Number(b.readBigUInt64LE(8)),
    created: Number(b.readBigUInt64LE(16)),
    vmId: b.toString('utf8', 26, 26 + vmLength),
  };
}

/**
 * Fills `into` (48 bytes, reused by the writer) with a record header whose CRC covers the
 * payload too. Returns `into`.
 */
export function encodeRecordHeader(
  into: Buffer,
  r: Omit<RecordHeader, 'crc' | 'payloadLength'>,
  payload: Buffer | null,
): Buffer {
  into.fill(0, 0, RECORD_HEADER_BYTES);
  into.writeUInt32LE(RECORD_MAGIC, 0);
  into.writeUInt8(r.type, 4);
  into.writeUInt8(r.flags, 5);
  into.writeBigUInt64LE(BigInt(r.recordSeq), 8);
  into.writeUInt32LE(r.disk, 16);
  into.writeUInt32LE(payload?.length ?? 0, 20);
  into.writeBigUInt64LE(BigInt(r.offset), 24);
  into.writeBigUInt64LE(BigInt(r.length), 32);
  into.writeUInt32LE(recordCrc(into, payload), 44);
  return into;
}

export function recordCrc(header: Buffer, payload: Buffer | null): number {
  const h = crc32(header.subarray(0, 44));
  return payload && payload.length > 0 ? crc32(payload, h) : h;
}

/**
 * Decodes the structural part of a record header: magic, type and the payload length the type
 * demands. The CRC is checked separately once the payload is read. Undefined = not a record.
 */
export function decodeRecordHeader(b: Buffer): RecordHeader | undefined {
  if (b.length < RECORD_HEADER_BYTES || b.readUInt32LE(0) !== RECORD_MAGIC) return undefined;
  const type = b.readUInt8(4);
  const payloadLength = b.readUInt32LE(20);
  const length = Number(b.readBigUInt64LE(32));
  const expected =
    type === RecordType.write
      ? length
      : type === RecordType.seal
        ? SEAL_PAYLOAD_BYTES
        : type === RecordType.trim || type === RecordType.zero
          ? 0
          : -1;
  if (expected !== payloadLength) return undefined;
  return {
    type: type as RecordTypeCode,
    flags: b.readUInt8(5),
    recordSeq: Number(b.readBigUInt64LE(8)),
    disk: b.readUInt32LE(16),
    payloadLength,
    offset: Number(b.readBigUInt64LE(24)),
    length,
    crc: b.readUInt32LE(44),
  };
}

const POINT_TYPE_CODE: Record<RecoveryPointType, number> = {
  'crash-consistent': 1,
  'app-consistent': 2,
};

export function encodeSealPayload(s: SealInfo): Buffer {
  const id = Buffer.from(s.id, 'utf8');
  if (id.length > POINT_ID_MAX)
    throw new RangeError(`recovery point id over ${POINT_ID_MAX} bytes`);
  const reason = truncateUtf8(s.freezeFailed ?? '', REASON_MAX);
  const b = Buffer.alloc(SEAL_PAYLOAD_BYTES);
  b.writeBigUInt64LE(BigInt(s.time), 0);
  b.writeUInt8(POINT_TYPE_CODE[s.type], 8);
  b.writeUInt16LE(id.length, 10);
  b.writeUInt16LE(reason.length, 12);
  id.copy(b, 14);
  reason.copy(b, 14 + POINT_ID_MAX);
  return b;
}

export function decodeSealPayload(b: Buffer): SealInfo | undefined {
  if (b.length !== SEAL_PAYLOAD_BYTES) return undefined;
  const typeCode = b.readUInt8(8);
  const type: RecoveryPointType | undefined =
    typeCode === 1 ? 'crash-consistent' : typeCode === 2 ? 'app-consistent' : undefined;
  const idLength = b.readUInt16LE(10);
  const reasonLength = b.readUInt16LE(12);
  if (!type || idLength > POINT_ID_MAX || reasonLength > REASON_MAX) return undefined;
  const point: SealInfo = {
    id: b.toString('utf8', 14, 14 + idLength),
    time: Number(b.readBigUInt64LE(0)),
    type,
  };
  if (reasonLength === 0) return point;
  const start = 14 + POINT_ID_MAX;
  return { ...point, freezeFailed: b.toString('utf8', start, start + reasonLength) };
}

function truncateUtf8(s: string, max: number): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= max) return b;
  let end = max;
  while (end > 0 && ((b[end] ?? 0) & 0xc0) === 0x80) end--; // back off a continuation byte
  return b.subarray(0, end);
}
