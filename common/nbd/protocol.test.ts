import { describe, expect, it } from 'vitest';
import {
  Cmd,
  CmdFlag,
  Errno,
  GREETING_SIZE,
  IHAVEOPT,
  Info,
  OPT_REPLY_MAGIC,
  Opt,
  REQUEST_MAGIC,
  REQUEST_SIZE,
  Rep,
  SIMPLE_REPLY_MAGIC,
  decodeGreeting,
  decodeInfoReply,
  decodeInfoRequest,
  decodeOptionHeader,
  decodeOptionReplyHeader,
  decodeRequest,
  decodeSimpleReply,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeInfoRequest,
  encodeInfoString,
  encodeOption,
  encodeOptionReply,
  encodeRequest,
  encodeServerReply,
  encodeSimpleReply,
  errnoName,
  isErrorReply,
  readU64,
  writeU64,
} from './protocol.ts';

describe('NBD handshake codec', () => {
  it('greeting carries both magics and the flags, big-endian', () => {
    const buf = encodeGreeting(3);
    expect(buf.length).toBe(GREETING_SIZE);
    expect(buf.toString('latin1', 0, 16)).toBe('NBDMAGICIHAVEOPT');
    expect(buf.readUInt16BE(16)).toBe(3);
    expect(decodeGreeting(buf)).toBe(3);
    expect(decodeGreeting(Buffer.alloc(GREETING_SIZE))).toBeUndefined();
  });

  it('option header round-trips', () => {
    const buf = encodeOption(Opt.GO, Buffer.from('abc'));
    expect(buf.readBigUInt64BE(0)).toBe(IHAVEOPT);
    expect(decodeOptionHeader(buf)).toEqual({ magicOk: true, option: Opt.GO, length: 3 });
    expect(buf.subarray(16).toString()).toBe('abc');
    expect(decodeOptionHeader(Buffer.alloc(16)).magicOk).toBe(false);
  });

  it('option reply round-trips, with and without data', () => {
    const empty = encodeOptionReply(Opt.LIST, Rep.ACK);
    expect(empty.length).toBe(20);
    expect(empty.readBigUInt64BE(0)).toBe(OPT_REPLY_MAGIC);
    expect(decodeOptionReplyHeader(empty)).toEqual({
      magicOk: true,
      option: Opt.LIST,
      type: Rep.ACK,
      length: 0,
    });
    const withData = encodeOptionReply(Opt.GO, Rep.ERR_UNKNOWN, Buffer.from('no'));
    expect(decodeOptionReplyHeader(withData)).toMatchObject({ type: 0x80000006, length: 2 });
    expect(isErrorReply(Rep.ERR_UNSUP)).toBe(true);
    expect(isErrorReply(Rep.INFO)).toBe(false);
  });

  it('info request round-trips and rejects inconsistent lengths', () => {
    const buf = encodeInfoRequest('disk0', [Info.NAME, Info.BLOCK_SIZE]);
    expect(buf.length).toBe(4 + 5 + 2 + 4);
    expect(decodeInfoRequest(buf)).toEqual({ exportName: 'disk0', infos: [1, 3] });
    expect(decodeInfoRequest(encodeInfoRequest('', []))).toEqual({ exportName: '', infos: [] });
    expect(decodeInfoRequest(buf.subarray(0, buf.length - 1))).toBeUndefined();
    expect(decodeInfoRequest(Buffer.concat([buf, Buffer.alloc(1)]))).toBeUndefined();
    expect(decodeInfoRequest(Buffer.from([0, 0, 0, 9, 1]))).toBeUndefined();
    const hugeName = Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0]);
    expect(decodeInfoRequest(hugeName)).toBeUndefined();
  });

  it('info replies round-trip', () => {
    expect(decodeInfoReply(encodeInfoExport(2 ** 40 + 5, 0x16d))).toEqual({
      type: 'export',
      size: 2 ** 40 + 5,
      transmissionFlags: 0x16d,
    });
    expect(decodeInfoReply(encodeInfoBlockSize(1, 4096, 32 << 20))).toEqual({
      type: 'block-size',
      minimum: 1,
      preferred: 4096,
      maximum: 32 << 20,
    });
    expect(decodeInfoReply(encodeInfoString(Info.DESCRIPTION, 'dé'))).toEqual({
      type: 'description',
      text: 'dé',
    });
    expect(decodeInfoReply(Buffer.from([0, 0, 1]))).toBeUndefined();
    expect(decodeInfoReply(Buffer.from([0, 9]))).toEqual({ type: 'unknown', info: 9 });
  });

  it('server reply and export-name reply have the documented layout', () => {
    const server = encodeServerReply('a', 'desc');
    expect(server.readUInt32BE(0)).toBe(1);
    expect(server.subarray(4).toString()).toBe('adesc');
    const bare = encodeExportNameReply(1024, 0x16d, false);
    expect(bare.length).toBe(10 + 124);
    expect(readU64(bare, 0)).toBe(1024);
    expect(bare.readUInt16BE(8)).toBe(0x16d);
    expect(encodeExportNameReply(1024, 1, true).length).toBe(10);
  });
});

describe('NBD transmission codec', () => {
  it('request round-trips', () => {
    const req = {
      flags: CmdFlag.FUA,
      type: Cmd.WRITE,
      cookie: 2n ** 64n - 1n,
      offset: 2 ** 50,
      length: 4096,
    };
    const buf = encodeRequest(req);
    expect(buf.length).toBe(REQUEST_SIZE);
    expect(buf.readUInt32BE(0)).toBe(REQUEST_MAGIC);
    expect(decodeRequest(buf)).toEqual({ magic: REQUEST_MAGIC, ...req });
  });

  it('offsets beyond 2^53 decode as huge numbers, never small ones', () => {
    const buf = Buffer.alloc(8);
    buf.writeBigUInt64BE(2n ** 64n - 1n, 0);
    expect(readU64(buf, 0)).toBeGreaterThan(Number.MAX_SAFE_INTEGER);
    writeU64(buf, 2 ** 40 + 3, 0);
    expect(buf.readBigUInt64BE(0)).toBe(2n ** 40n + 3n);
  });

  it('simple reply round-trips', () => {
    const buf = encodeSimpleReply(Errno.ESHUTDOWN, 42n);
    expect(decodeSimpleReply(buf)).toEqual({
      magic: SIMPLE_REPLY_MAGIC,
      errno: 108,
      cookie: 42n,
    });
  });

  it('names errno values', () => {
    expect(errnoName(22)).toBe('EINVAL');
    expect(errnoName(108)).toBe('ESHUTDOWN');
    expect(errnoName(4242)).toBe('errno 4242');
  });
});
