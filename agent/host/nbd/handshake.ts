/**
 * Server side of the fixed-newstyle handshake (common/nbd/protocol.ts has the message flow).
 *
 * What we answer:
 * - NBD_OPT_GO / NBD_OPT_INFO: NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE always (the spec lets a
 *   server send block sizes unasked; minimum 1 means clients need not align), NBD_INFO_NAME and
 *   NBD_INFO_DESCRIPTION when asked; then NBD_REP_ACK. GO enters transmission.
 * - NBD_OPT_EXPORT_NAME: the bare reply, or a hard disconnect for an unknown name (the option
 *   has no way to carry an error).
 * - NBD_OPT_LIST: one NBD_REP_SERVER; NBD_OPT_ABORT: NBD_REP_ACK, then close.
 * - everything else, NBD_OPT_STRUCTURED_REPLY included: NBD_REP_ERR_UNSUP, so only simple
 *   replies are ever sent (LAB.md: qemu-io and nbdcopy accept the refusal).
 * One export per socket, so the empty name (the spec's "default export") selects it too.
 *
 * Hard disconnects: unknown client flags, a bad option magic, an option longer than
 * MAX_OPTION_LENGTH, or more than MAX_OPTIONS options (a client looping on errors).
 */
import type { Socket } from 'node:net';
import type { Logger } from '../../../common/log/log.ts';
import {
  ClientFlag,
  HandshakeFlag,
  Info,
  MAX_OPTION_LENGTH,
  MAX_PAYLOAD,
  OPTION_HEADER_SIZE,
  Opt,
  Rep,
  decodeInfoRequest,
  decodeOptionHeader,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeInfoString,
  encodeOptionReply,
  encodeServerReply,
} from '../../../common/nbd/protocol.ts';
import type { SocketReader } from '../../../common/nbd/socket-reader.ts';

/** qemu-io sends 2–3 options, nbdinfo --list about 5; 64 is generous. */
const MAX_OPTIONS = 64;
const KNOWN_CLIENT_FLAGS = ClientFlag.FIXED_NEWSTYLE | ClientFlag.NO_ZEROES;

export interface ExportInfo {
  readonly name: string;
  readonly description: string | undefined;
  readonly size: number;
  readonly preferredBlockSize: number;
  readonly transmissionFlags: number;
}

export interface HandshakeContext {
  readonly socket: Socket;
  readonly reader: SocketReader;
  readonly info: ExportInfo;
  readonly log: Logger;
  readonly isClosing: () => boolean;
}

type Step = 'continue' | 'transmission' | 'end';

/** Runs option haggling; true when the connection enters the transmission phase. */
export async function negotiate(ctx: HandshakeContext): Promise<boolean> {
  ctx.socket.write(encodeGreeting(HandshakeFlag.FIXED_NEWSTYLE | HandshakeFlag.NO_ZEROES));
  const flagBuf = await ctx.reader.read(4);
  if (!flagBuf) return false;
  const clientFlags = flagBuf.readUInt32BE(0);
  if ((clientFlags & ~KNOWN_CLIENT_FLAGS) !== 0) {
    ctx.log.warn({ clientFlags }, 'nbd client sent unknown handshake flags; closing');
    return false;
  }
  const noZeroes = (clientFlags & ClientFlag.NO_ZEROES) !== 0;
  for (let n = 0; n < MAX_OPTIONS; n++) {
    const header = await ctx.reader.read(OPTION_HEADER_SIZE);
    if (!header) return false;
    const { magicOk, option, length } = decodeOptionHeader(header);
    if (!magicOk) {
      ctx.log.warn('nbd client sent a bad option magic; closing');
      return false;
    }
    if (length > MAX_OPTION_LENGTH) {
      ctx.log.warn({ option, length }, 'nbd option too long; closing');
      return false;
    }
    const data = length === 0 ? Buffer.alloc(0) : await ctx.reader.read(length);
    if (!data) return false;
    const step = handleOption(ctx, option, data, noZeroes);
    if (step !== 'continue') return step === 'transmission';
  }
  ctx.log.warn({ limit: MAX_OPTIONS }, 'nbd client sent too many options; closing');
  return false;
}

function handleOption(
  ctx: HandshakeContext,
  option: number,
  data: Buffer,
  noZeroes: boolean,
): Step {
  const reply = (type: number, payload?: Buffer): void => {
    ctx.socket.write(encodeOptionReply(option, type, payload));
  };
  const refuse = (type: number, message: string): Step => {
    ctx.log.debug({ option, type, message }, 'nbd option refused');
    reply(type, Buffer.from(message, 'utf8'));
    return 'continue';
  };
  if (ctx.isClosing() && option !== Opt.ABORT && option !== Opt.EXPORT_NAME) {
    return refuse(Rep.ERR_SHUTDOWN, 'export is shutting down');
  }
  switch (option) {
    case Opt.EXPORT_NAME:
      return exportName(ctx, data.toString('utf8'), noZeroes);
    case Opt.INFO:
    case Opt.GO:
      return infoOrGo(ctx, option, data, refuse);
    case Opt.LIST:
      if (data.length !== 0) return refuse(Rep.ERR_INVALID, 'NBD_OPT_LIST takes no data');
      reply(Rep.SERVER, encodeServerReply(ctx.info.name, ctx.info.description));
      reply(Rep.ACK);
      return 'continue';
    case Opt.ABORT:
      reply(Rep.ACK);
      return 'end';
    default:
      return refuse(Rep.ERR_UNSUP, `option ${option} is not supported`);
  }
}

function matches(info: ExportInfo, requested: string): boolean {
  return requested === info.name || requested === '';
}

function exportName(ctx: HandshakeContext, requested: string, noZeroes: boolean): Step {
  if (ctx.isClosing() || !matches(ctx.info, requested)) {
    ctx.log.warn({ requested }, 'nbd NBD_OPT_EXPORT_NAME refused; closing');
    return 'end';
  }
  ctx.socket.write(encodeExportNameReply(ctx.info.size, ctx.info.transmissionFlags, noZeroes));
  return 'transmission';
}

function infoOrGo(
  ctx: HandshakeContext,
  option: number,
  data: Buffer,
  refuse: (type: number, message: string) => Step,
): Step {
  const request = decodeInfoRequest(data);
  if (!request) return refuse(Rep.ERR_INVALID, 'malformed NBD_OPT_INFO/NBD_OPT_GO data');
  if (!matches(ctx.info, request.exportName)) {
    return refuse(Rep.ERR_UNKNOWN, `no export named "${request.exportName}"`);
  }
  const { info } = ctx;
  const replies = [
    encodeInfoExport(info.size, info.transmissionFlags),
    encodeInfoBlockSize(1, info.preferredBlockSize, MAX_PAYLOAD),
  ];
  if (request.infos.includes(Info.NAME)) replies.push(encodeInfoString(Info.NAME, info.name));
  if (request.infos.includes(Info.DESCRIPTION) && info.description !== undefined) {
    replies.push(encodeInfoString(Info.DESCRIPTION, info.description));
  }
  for (const payload of replies) ctx.socket.write(encodeOptionReply(option, Rep.INFO, payload));
  ctx.socket.write(encodeOptionReply(option, Rep.ACK));
  return option === Opt.GO ? 'transmission' : 'continue';
}
