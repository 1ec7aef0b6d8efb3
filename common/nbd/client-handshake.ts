/**
 * Client side of the fixed-newstyle handshake: NBD_OPT_GO asking for NBD_INFO_BLOCK_SIZE, and
 * NBD_OPT_EXPORT_NAME as the fallback for a server that does not know GO. Structured replies
 * are never requested, so the server must answer with simple replies only.
 *
 * Flow:
 *   1. read the greeting; refuse a server without FIXED_NEWSTYLE;
 *   2. send client flags (FIXED_NEWSTYLE, plus NO_ZEROES when offered);
 *   3. send NBD_OPT_GO; collect NBD_REP_INFO until NBD_REP_ACK; an error reply ends it
 *      (NBD_REP_ERR_UNKNOWN → SS_NOT_FOUND), except NBD_REP_ERR_UNSUP → step 4;
 *   4. NBD_OPT_EXPORT_NAME: read size and flags (and the 124 zeroes unless NO_ZEROES).
 */
import type { Socket } from 'node:net';
import { SecondsiteError } from '../errors/errors.ts';
import {
  ClientFlag,
  EXPORT_NAME_REPLY_SIZE,
  EXPORT_NAME_ZEROES,
  GREETING_SIZE,
  HandshakeFlag,
  Info,
  MAX_OPTION_LENGTH,
  MAX_PAYLOAD,
  OPTION_REPLY_HEADER_SIZE,
  Opt,
  Rep,
  decodeGreeting,
  decodeInfoReply,
  decodeOptionReplyHeader,
  encodeInfoRequest,
  encodeOption,
  isErrorReply,
  readU64,
} from './protocol.ts';
import type { SocketReader } from './socket-reader.ts';

export interface NegotiatedExport {
  readonly size: number;
  readonly transmissionFlags: number;
  /** Largest READ/WRITE payload the server accepts (MAX_PAYLOAD when it did not say). */
  readonly maxPayload: number;
  readonly preferredBlockSize: number;
}

const REP_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(Rep).map(([name, value]) => [value, `NBD_REP_${name}`]),
);

function protocolError(message: string, details: Record<string, unknown> = {}): SecondsiteError {
  return new SecondsiteError('SS_PROTOCOL', `NBD handshake: ${message}`, details);
}

async function readOrFail(reader: SocketReader, n: number): Promise<Buffer> {
  const buf = await reader.read(n);
  if (!buf) throw new SecondsiteError('SS_UNAVAILABLE', 'NBD server closed the connection');
  return buf;
}

export async function clientHandshake(
  socket: Socket,
  reader: SocketReader,
  exportName: string,
): Promise<NegotiatedExport> {
  const flags = decodeGreeting(await readOrFail(reader, GREETING_SIZE));
  if (flags === undefined) throw protocolError('not an NBD server (bad greeting magic)');
  if ((flags & HandshakeFlag.FIXED_NEWSTYLE) === 0) {
    throw protocolError('server does not speak fixed newstyle');
  }
  const noZeroes = (flags & HandshakeFlag.NO_ZEROES) !== 0;
  const clientFlags = ClientFlag.FIXED_NEWSTYLE | (noZeroes ? ClientFlag.NO_ZEROES : 0);
  const flagBuf = Buffer.alloc(4);
  flagBuf.writeUInt32BE(clientFlags, 0);
  socket.write(flagBuf);
  socket.write(encodeOption(Opt.GO, encodeInfoRequest(exportName, [Info.BLOCK_SIZE])));
  const viaGo = await readGoReplies(reader, exportName);
  if (viaGo) return viaGo;
  socket.write(encodeOption(Opt.EXPORT_NAME, Buffer.from(exportName, 'utf8')));
  const reply = await readOrFail(
    reader,
    EXPORT_NAME_REPLY_SIZE + (noZeroes ? 0 : EXPORT_NAME_ZEROES),
  );
  return {
    size: readU64(reply, 0),
    transmissionFlags: reply.readUInt16BE(8),
    maxPayload: MAX_PAYLOAD,
    preferredBlockSize: 4096,
  };
}

/** Undefined when the server does not support NBD_OPT_GO. */
async function readGoReplies(
  reader: SocketReader,
  exportName: string,
): Promise<NegotiatedExport | undefined> {
  let size: number | undefined;
  let transmissionFlags = 0;
  let maxPayload = MAX_PAYLOAD;
  let preferredBlockSize = 4096;
  for (;;) {
    const header = decodeOptionReplyHeader(await readOrFail(reader, OPTION_REPLY_HEADER_SIZE));
    if (!header.magicOk || header.option !== Opt.GO) throw protocolError('bad option reply');
    if (header.length > MAX_OPTION_LENGTH) throw protocolError('option reply too long');
    const data = header.length > 0 ? await readOrFail(reader, header.length) : Buffer.alloc(0);
    if (header.type === Rep.ERR_UNSUP) return undefined;
    if (isErrorReply(header.type)) throw goRefused(header.type, data, exportName);
    if (header.type === Rep.ACK) {
      if (size === undefined) throw protocolError('server acked NBD_OPT_GO without the size');
      return { size, transmissionFlags, maxPayload, preferredBlockSize };
    }
    if (header.type !== Rep.INFO) continue; // unknown non-error replies are skipped
    const info = decodeInfoReply(data);
    if (!info) throw protocolError('malformed NBD_REP_INFO');
    if (info.type === 'export') {
      size = info.size;
      transmissionFlags = info.transmissionFlags;
    } else if (info.type === 'block-size') {
      maxPayload = Math.min(info.maximum, MAX_PAYLOAD);
      preferredBlockSize = info.preferred;
    }
  }
}

function goRefused(type: number, data: Buffer, exportName: string): SecondsiteError {
  const reply = REP_NAMES[type] ?? `reply ${type}`;
  const message = data.toString('utf8');
  const details = { reply, exportName, serverMessage: message };
  if (type === Rep.ERR_UNKNOWN) {
    return new SecondsiteError('SS_NOT_FOUND', `NBD export "${exportName}" not found`, details);
  }
  if (type === Rep.ERR_SHUTDOWN) {
    return new SecondsiteError('SS_UNAVAILABLE', 'NBD server is shutting down', details);
  }
  return protocolError(`server refused NBD_OPT_GO with ${reply}`, details);
}
