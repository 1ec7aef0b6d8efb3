/**
 * The NBD wire protocol (NetworkBlockDevice doc/proto.md), the subset secondsite speaks:
 * fixed-newstyle handshake with NBD_OPT_GO/INFO and simple replies only. Shared by the host
 * agent's server (agent/host/nbd/) and our client (common/nbd/client.ts). Every integer on the
 * wire is big-endian.
 *
 * Handshake (fixed newstyle):
 *   1. S: NBDMAGIC (u64), IHAVEOPT (u64), handshake flags (u16)
 *   2. C: client flags (u32)
 *   3. C: IHAVEOPT (u64), option (u32), length (u32), data; repeated
 *   4. S: per option, one or more replies: OPT_REPLY_MAGIC (u64), option (u32), type (u32),
 *      length (u32), data; NBD_OPT_EXPORT_NAME alone gets the old bare reply instead
 *   5. NBD_OPT_GO acked (or NBD_OPT_EXPORT_NAME answered) → transmission phase
 *
 * Transmission:
 *   C: request (28 bytes): REQUEST_MAGIC (u32), flags (u16), type (u16), cookie (u64),
 *      offset (u64), length (u32), then `length` bytes for NBD_CMD_WRITE
 *   S: simple reply (16 bytes): SIMPLE_REPLY_MAGIC (u32), errno (u32), cookie (u64), then
 *      `length` bytes for a successful NBD_CMD_READ; none for NBD_CMD_DISC
 */

export const NBD_MAGIC = 0x4e42444d41474943n; // "NBDMAGIC"
export const IHAVEOPT = 0x49484156454f5054n; // "IHAVEOPT"
export const OPT_REPLY_MAGIC = 0x3e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flags (server, u16). */
export const HandshakeFlag = { FIXED_NEWSTYLE: 1 << 0, NO_ZEROES: 1 << 1 } as const;
/** Client flags (u32): the same bits, echoed by the client. */
export const ClientFlag = { FIXED_NEWSTYLE: 1 << 0, NO_ZEROES: 1 << 1 } as const;

/** Transmission flags (u16). */
export const TransmissionFlag = {
  HAS_FLAGS: 1 << 0,
  READ_ONLY: 1 << 1,
  SEND_FLUSH: 1 << 2,
  SEND_FUA: 1 << 3,
  ROTATIONAL: 1 << 4,
  SEND_TRIM: 1 << 5,
  SEND_WRITE_ZEROES: 1 << 6,
  SEND_DF: 1 << 7,
  CAN_MULTI_CONN: 1 << 8,
  SEND_RESIZE: 1 << 9,
  SEND_CACHE: 1 << 10,
  SEND_FAST_ZERO: 1 << 11,
} as const;

export const Opt = {
  EXPORT_NAME: 1,
  ABORT: 2,
  LIST: 3,
  STARTTLS: 5,
  INFO: 6,
  GO: 7,
  STRUCTURED_REPLY: 8,
  LIST_META_CONTEXT: 9,
  SET_META_CONTEXT: 10,
  EXTENDED_HEADERS: 11,
} as const;

const REP_ERR = 0x80000000;
export const Rep = {
  ACK: 1,
  SERVER: 2,
  INFO: 3,
  META_CONTEXT: 4,
  ERR_UNSUP: REP_ERR + 1,
  ERR_POLICY: REP_ERR + 2,
  ERR_INVALID: REP_ERR + 3,
  ERR_PLATFORM: REP_ERR + 4,
  ERR_TLS_REQD: REP_ERR + 5,
  ERR_UNKNOWN: REP_ERR + 6,
  ERR_SHUTDOWN: REP_ERR + 7,
  ERR_BLOCK_SIZE_REQD: REP_ERR + 8,
  ERR_TOO_BIG: REP_ERR + 9,
} as const;

export function isErrorReply(type: number): boolean {
  return type >= REP_ERR;
}

export const Info = { EXPORT: 0, NAME: 1, DESCRIPTION: 2, BLOCK_SIZE: 3 } as const;

export const Cmd = {
  READ: 0,
  WRITE: 1,
  DISC: 2,
  FLUSH: 3,
  TRIM: 4,
  CACHE: 5,
  WRITE_ZEROES: 6,
  BLOCK_STATUS: 7,
} as const;

export const CmdFlag = {
  FUA: 1 << 0,
  NO_HOLE: 1 << 1,
  DF: 1 << 2,
  REQ_ONE: 1 << 3,
  FAST_ZERO: 1 << 4,
} as const;

/** The error values the protocol allows in a reply (proto.md "Error values"). */
export const Errno = {
  EPERM: 1,
  EIO: 5,
  ENOMEM: 12,
  EINVAL: 22,
  ENOSPC: 28,
  EOVERFLOW: 75,
  ENOTSUP: 95,
  ESHUTDOWN: 108,
} as const;
export type ErrnoName = keyof typeof Errno;

export function errnoName(value: number): string {
  for (const [name, v] of Object.entries(Errno)) if (v === value) return name;
  return `errno ${value}`;
}

/**
 * Limits. Strings (export names, descriptions) are capped at 4096 bytes by the spec. An option
 * carries at most a name plus its framing and info requests: 4 + 4096 + 2 + 2·n; 16 KiB leaves
 * room for ~6000 info requests, far more than the four defined, so a longer option is abuse.
 */
export const MAX_STRING = 4096;
export const MAX_OPTION_LENGTH = 16 * 1024;
/** Largest READ/WRITE payload we serve and advertise (NBD_INFO_BLOCK_SIZE maximum). */
export const MAX_PAYLOAD = 32 * 1024 * 1024;

export const GREETING_SIZE = 18;
export const OPTION_HEADER_SIZE = 16;
export const OPTION_REPLY_HEADER_SIZE = 20;
export const REQUEST_SIZE = 28;
export const SIMPLE_REPLY_SIZE = 16;
/** NBD_OPT_EXPORT_NAME's bare reply: size (u64), flags (u16), then 124 zero bytes. */
export const EXPORT_NAME_REPLY_SIZE = 10;
export const EXPORT_NAME_ZEROES = 124;

/**
 * Reads a u64 as a number. Values above 2^53 lose precision but stay above 2^53, which is far
 * past any device size, so bounds checks on the result still refuse them.
 */
export function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32BE(at) * 0x100000000 + buf.readUInt32BE(at + 4);
}

export function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32BE(Math.floor(value / 0x100000000), at);
  buf.writeUInt32BE(value % 0x100000000, at + 4);
}

// ---- handshake ----

export function encodeGreeting(handshakeFlags: number): Buffer {
  const buf = Buffer.alloc(GREETING_SIZE);
  buf.writeBigUInt64BE(NBD_MAGIC, 0);
  buf.writeBigUInt64BE(IHAVEOPT, 8);
  buf.writeUInt16BE(handshakeFlags, 16);
  return buf;
}

/** Returns the handshake flags, or undefined when the magics are wrong (not an NBD server). */
export function decodeGreeting(buf: Buffer): number | undefined {
  if (buf.readBigUInt64BE(0) !== NBD_MAGIC || buf.readBigUInt64BE(8) !== IHAVEOPT) return undefined;
  return buf.readUInt16BE(16);
}

export function encodeOption(option: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const buf = Buffer.alloc(OPTION_HEADER_SIZE + data.length);
  buf.writeBigUInt64BE(IHAVEOPT, 0);
  buf.writeUInt32BE(option, 8);
  buf.writeUInt32BE(data.length, 12);
  data.copy(buf, OPTION_HEADER_SIZE);
  return buf;
}

export interface OptionHeader {
  readonly magicOk: boolean;
  readonly option: number;
  readonly length: number;
}

export function decodeOptionHeader(buf: Buffer): OptionHeader {
  return {
    magicOk: buf.readBigUInt64BE(0) === IHAVEOPT,
    option: buf.readUInt32BE(8),
    length: buf.readUInt32BE(12),
  };
}

export function encodeOptionReply(option: number, type: number, data?: Buffer): Buffer {
  const length = data?.length ?? 0;
  const buf = Buffer.alloc(OPTION_REPLY_HEADER_SIZE + length);
  buf.writeBigUInt64BE(OPT_REPLY_MAGIC, 0);
  buf.writeUInt32BE(option, 8);
  buf.writeUInt32BE(type, 12);
  buf.writeUInt32BE(length, 16);
  data?.copy(buf, OPTION_REPLY_HEADER_SIZE);
  return buf;
}

export interface OptionReplyHeader {
  readonly magicOk: boolean;
  readonly option: number;
  readonly type: number;
  readonly length: number;
}

export function decodeOptionReplyHeader(buf: Buffer): OptionReplyHeader {
  return {
    magicOk: buf.readBigUInt64BE(0) === OPT_REPLY_MAGIC,
    option: buf.readUInt32BE(8),
    type: buf.readUInt32BE(12),
    length: buf.readUInt32BE(16),
  };
}

/** NBD_OPT_INFO / NBD_OPT_GO data: name length (u32), name, count (u16), info types (u16 each). */
export function encodeInfoRequest(exportName: string, infos: readonly number[]): Buffer {
  const name = Buffer.from(exportName, 'utf8');
  const buf = Buffer.alloc(4 + name.length + 2 + 2 * infos.length);
  buf.writeUInt32BE(name.length, 0);
  name.copy(buf, 4);
  buf.writeUInt16BE(infos.length, 4 + name.length);
  infos.forEach((info, i) => buf.writeUInt16BE(info, 6 + name.length + 2 * i));
  return buf;
}

/** Undefined when the lengths inside do not add up to the option length (NBD_REP_ERR_INVALID). */
export function decodeInfoRequest(
  data: Buffer,
): { exportName: string; infos: number[] } | undefined {
  if (data.length < 6) return undefined;
  const nameLength = data.readUInt32BE(0);
  if (nameLength > data.length - 6) return undefined;
  const count = data.readUInt16BE(4 + nameLength);
  if (data.length !== 6 + nameLength + 2 * count) return undefined;
  const infos: number[] = [];
  for (let i = 0; i < count; i++) infos.push(data.readUInt16BE(6 + nameLength + 2 * i));
  return { exportName: data.toString('utf8', 4, 4 + nameLength), infos };
}

export function encodeInfoExport(size: number, transmissionFlags: number): Buffer {
  const buf = Buffer.alloc(12);
  buf.writeUInt16BE(Info.EXPORT, 0);
  writeU64(buf, size, 2);
  buf.writeUInt16BE(transmissionFlags, 10);
  return buf;
}

export function encodeInfoBlockSize(minimum: number, preferred: number, maximum: number): Buffer {
  const buf = Buffer.alloc(14);
  buf.writeUInt16BE(Info.BLOCK_SIZE, 0);
  buf.writeUInt32BE(minimum, 2);
  buf.writeUInt32BE(preferred, 6);
  buf.writeUInt32BE(maximum, 10);
  return buf;
}

/** NBD_INFO_NAME and NBD_INFO_DESCRIPTION: the info type, then the string. */
export function encodeInfoString(type: number, text: string): Buffer {
  const str = Buffer.from(text, 'utf8');
  const buf = Buffer.alloc(2 + str.length);
  buf.writeUInt16BE(type, 0);
  str.copy(buf, 2);
  return buf;
}

export type InfoReply =
  | { type: 'export'; size: number; transmissionFlags: number }
  | { type: 'block-size'; minimum: number; preferred: number; maximum: number }
  | { type: 'name' | 'description'; text: string }
  | { type: 'unknown'; info: number };

/** Undefined when a known info type has the wrong length. */
export function decodeInfoReply(data: Buffer): InfoReply | undefined {
  if (data.length < 2) return undefined;
  const info = data.readUInt16BE(0);
  switch (info) {
    case Info.EXPORT:
      if (data.length !== 12) return undefined;
      return { type: 'export', size: readU64(data, 2), transmissionFlags: data.readUInt16BE(10) };
    case Info.BLOCK_SIZE:
      if (data.length !== 14) return undefined;
      return {
        type: 'block-size',
        minimum: data.readUInt32BE(2),
        preferred: data.readUInt32BE(6),
        maximum: data.readUInt32BE(10),
      };
    case Info.NAME:
    case Info.DESCRIPTION:
      return {
        type: info === Info.NAME ? 'name' : 'description',
        text: data.toString('utf8', 2),
      };
    default:
      return { type: 'unknown', info };
  }
}

/** NBD_REP_SERVER data: name length (u32), name, then a human-readable description. */
export function encodeServerReply(exportName: string, description = ''): Buffer {
  const name = Buffer.from(exportName, 'utf8');
  const desc = Buffer.from(description, 'utf8');
  const buf = Buffer.alloc(4 + name.length + desc.length);
  buf.writeUInt32BE(name.length, 0);
  name.copy(buf, 4);
  desc.copy(buf, 4 + name.length);
  return buf;
}

export function encodeExportNameReply(
  size: number,
  transmissionFlags: number,
  noZeroes: boolean,
): Buffer {
  const buf = Buffer.alloc(EXPORT_NAME_REPLY_SIZE + (noZeroes ? 0 : EXPORT_NAME_ZEROES));
  writeU64(buf, size, 0);
  buf.writeUInt16BE(transmissionFlags, 8);
  return buf;
}

// ---- transmission ----

export interface Request {
  readonly magic: number;
  readonly flags: number;
  readonly type: number;
  readonly cookie: bigint;
  readonly offset: number;
  readonly length: number;
}

export function encodeRequest(req: Omit<Request, 'magic'>): Buffer {
  const buf = Buffer.allocUnsafe(REQUEST_SIZE);
  buf.writeUInt32BE(REQUEST_MAGIC, 0);
  buf.writeUInt16BE(req.flags, 4);
  buf.writeUInt16BE(req.type, 6);
  buf.writeBigUInt64BE(req.cookie, 8);
  writeU64(buf, req.offset, 16);
  buf.writeUInt32BE(req.length, 24);
  return buf;
}

export function decodeRequest(buf: Buffer): Request {
  return {
    magic: buf.readUInt32BE(0),
    flags: buf.readUInt16BE(4),
    type: buf.readUInt16BE(6),
    cookie: buf.readBigUInt64BE(8),
    offset: readU64(buf, 16),
    length: buf.readUInt32BE(24),
  };
}

export function encodeSimpleReply(errno: number, cookie: bigint): Buffer {
  const buf = Buffer.allocUnsafe(SIMPLE_REPLY_SIZE);
  buf.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  buf.writeUInt32BE(errno, 4);
  buf.writeBigUInt64BE(cookie, 8);
  return buf;
}

export interface SimpleReply {
  readonly magic: number;
  readonly errno: number;
  readonly cookie: bigint;
}

export function decodeSimpleReply(buf: Buffer): SimpleReply {
  return { magic: buf.readUInt32BE(0), errno: buf.readUInt32BE(4), cookie: buf.readBigUInt64BE(8) };
}
