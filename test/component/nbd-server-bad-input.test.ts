/**
 * What well-behaved clients never send: raw-socket requests and option haggling, and libnbd
 * with strict mode off. Each gets an error reply or a closed connection; the server keeps
 * serving other clients, and the backing file never changes size.
 */
import { readFileSync, statSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NbdClient } from '../../common/nbd/client.ts';
import {
  ClientFlag,
  Cmd,
  CmdFlag,
  Errno,
  EXPORT_NAME_REPLY_SIZE,
  EXPORT_NAME_ZEROES,
  IHAVEOPT,
  Info,
  MAX_OPTION_LENGTH,
  Opt,
  Rep,
  decodeInfoReply,
  encodeInfoRequest,
  readU64,
} from '../../common/nbd/protocol.ts';
import { MiB, RawPeer, run, serveTempDisk, waitFor, type ServedDisk } from '../helpers/nbd.ts';

const SIZE = 16 * MiB;
let s: ServedDisk;
const peers: RawPeer[] = [];

beforeEach(async () => {
  s = await serveTempDisk(SIZE);
});
afterEach(async () => {
  for (const p of peers.splice(0)) p.destroy();
  await s.stop();
});

async function peer(): Promise<RawPeer> {
  const p = await RawPeer.connect(s.socketPath);
  peers.push(p);
  return p;
}

async function inTransmission(): Promise<RawPeer> {
  const p = await peer();
  await p.go();
  return p;
}

/** Another client still gets full service, and the file is still exactly the disk size. */
async function expectStillServing(): Promise<void> {
  const client = await NbdClient.connect(s.uri);
  await client.write(MiB, Buffer.alloc(4096, 0x42));
  expect((await client.read(MiB, 4096)).equals(Buffer.alloc(4096, 0x42))).toBe(true);
  await client.close();
  expect(statSync(s.diskPath).size).toBe(SIZE);
}

describe('NBD server transmission bad input', () => {
  it('closes the connection on a bad request magic', async () => {
    const p = await inTransmission();
    p.socket.write(Buffer.alloc(28, 0xee));
    expect(await p.readReply()).toBeNull();
    await p.closed();
    await expectStillServing();
  });

  it('answers EINVAL for unknown command flags and keeps the connection', async () => {
    const p = await inTransmission();
    p.sendRequest(Cmd.READ, 1 << 9, 1n, 0, 4096);
    p.sendRequest(Cmd.WRITE_ZEROES, CmdFlag.FAST_ZERO, 2n, 0, 4096);
    p.sendRequest(Cmd.TRIM, CmdFlag.NO_HOLE, 3n, 0, 4096);
    const replies = [await p.readReply(), await p.readReply(), await p.readReply()];
    expect(replies.map((r) => [r?.cookie, r?.errno])).toEqual([
      [1n, Errno.EINVAL],
      [2n, Errno.EINVAL],
      [3n, Errno.EINVAL],
    ]);
    p.sendRequest(Cmd.READ, CmdFlag.FUA, 4n, 0, 16);
    expect(await p.readReply()).toMatchObject({ cookie: 4n, errno: 0 });
    expect((await p.mustRead(16)).equals(Buffer.alloc(16))).toBe(true);
  });

  it('answers EINVAL for unknown commands', async () => {
    const p = await inTransmission();
    p.sendRequest(Cmd.BLOCK_STATUS, 0, 1n, 0, 4096);
    p.sendRequest(99, 0, 2n, 0, 0);
    expect(await p.readReply()).toMatchObject({ cookie: 1n, errno: Errno.EINVAL });
    expect(await p.readReply()).toMatchObject({ cookie: 2n, errno: Errno.EINVAL });
  });

  it('refuses out-of-range ranges without touching the file', async () => {
    const p = await inTransmission();
    p.sendRequest(Cmd.READ, 0, 1n, SIZE - 100, 4096);
    p.sendRequest(Cmd.READ, 0, 2n, 2 ** 63, 1);
    p.sendRequest(Cmd.TRIM, 0, 3n, SIZE, 1);
    p.sendRequest(Cmd.WRITE_ZEROES, 0, 4n, SIZE - 1, 2);
    p.sendRequest(Cmd.WRITE, 0, 5n, SIZE - 10, 20);
    p.socket.write(Buffer.alloc(20, 0xff));
    const replies = [];
    for (let i = 0; i < 5; i++) replies.push(await p.readReply());
    expect(replies.map((r) => r?.errno)).toEqual([
      Errno.EINVAL,
      Errno.EINVAL,
      Errno.EINVAL,
      Errno.ENOSPC,
      Errno.ENOSPC,
    ]);
    // The connection is still in step: the WRITE's payload was consumed.
    p.sendRequest(Cmd.READ, 0, 6n, SIZE - 16, 16);
    expect(await p.readReply()).toMatchObject({ cookie: 6n, errno: 0 });
    expect((await p.mustRead(16)).equals(Buffer.alloc(16))).toBe(true);
    expect(statSync(s.diskPath).size).toBe(SIZE);
  });

  it('answers EINVAL to a READ over 32 MiB', async () => {
    const big = await serveTempDisk(64 * MiB);
    try {
      const p = await RawPeer.connect(big.socketPath);
      peers.push(p);
      await p.go();
      p.sendRequest(Cmd.READ, 0, 1n, 0, 32 * MiB + 1);
      expect(await p.readReply()).toMatchObject({ cookie: 1n, errno: Errno.EINVAL });
      p.sendRequest(Cmd.FLUSH, 0, 2n, 0, 0);
      expect(await p.readReply()).toMatchObject({ cookie: 2n, errno: 0 });
    } finally {
      await big.stop();
    }
  });

  it('closes the connection on a WRITE whose payload is over 32 MiB', async () => {
    const p = await inTransmission();
    p.sendRequest(Cmd.WRITE, 0, 1n, 0, 32 * MiB + 1);
    p.socket.write(Buffer.alloc(64 * 1024, 0x33));
    expect(await p.readReply()).toBeNull();
    await expectStillServing();
    expect(
      readFileSync(s.diskPath)
        .subarray(0, 64 * 1024)
        .every((b) => b === 0),
    ).toBe(true);
  });

  it('survives a client that vanishes halfway through a WRITE payload', async () => {
    const p = await inTransmission();
    await waitFor(() => s.exp.connections() === 1, 'the raw client to be counted');
    p.sendRequest(Cmd.WRITE, 0, 1n, 2 * MiB, MiB);
    p.socket.write(Buffer.alloc(MiB / 2, 0x99));
    p.destroy();
    await waitFor(() => s.exp.connections() === 0, 'the vanished client to be dropped');
    await expectStillServing();
    const region = readFileSync(s.diskPath).subarray(2 * MiB, 3 * MiB);
    expect(region.every((b) => b === 0)).toBe(true);
  });

  it('lets requests in flight finish before honouring DISC', async () => {
    const p = await inTransmission();
    p.sendRequest(Cmd.WRITE, CmdFlag.FUA, 1n, 0, 8192);
    p.socket.write(Buffer.alloc(8192, 0x21));
    p.sendRequest(Cmd.DISC, 0, 2n, 0, 0);
    expect(await p.readReply()).toMatchObject({ cookie: 1n, errno: 0 });
    expect(await p.readReply()).toBeNull();
    await p.closed();
    expect(
      readFileSync(s.diskPath)
        .subarray(0, 8192)
        .every((b) => b === 0x21),
    ).toBe(true);
  });
});

describe('NBD server option haggling', () => {
  it('closes on unknown client flags', async () => {
    const p = await peer();
    await p.greet(ClientFlag.FIXED_NEWSTYLE | (1 << 5));
    await p.closed();
    await expectStillServing();
  });

  it('closes on a bad option magic', async () => {
    const p = await peer();
    await p.greet();
    p.socket.write(Buffer.alloc(16, 0x01));
    await p.closed();
    await expectStillServing();
  });

  it('closes on an option longer than the limit', async () => {
    const p = await peer();
    await p.greet();
    const header = Buffer.alloc(16);
    header.writeBigUInt64BE(IHAVEOPT, 0);
    header.writeUInt32BE(Opt.GO, 8);
    header.writeUInt32BE(MAX_OPTION_LENGTH + 1, 12);
    p.socket.write(header);
    await p.closed();
    await expectStillServing();
  });

  it('refuses unsupported and malformed options, then still lets GO through', async () => {
    const p = await peer();
    await p.greet();
    const refusals: Array<[number, Buffer | undefined, number]> = [
      [Opt.STRUCTURED_REPLY, undefined, Rep.ERR_UNSUP],
      [Opt.STARTTLS, undefined, Rep.ERR_UNSUP],
      [Opt.SET_META_CONTEXT, Buffer.alloc(8), Rep.ERR_UNSUP],
      [1234, Buffer.from('junk'), Rep.ERR_UNSUP],
      [Opt.LIST, Buffer.from('x'), Rep.ERR_INVALID],
      [Opt.GO, Buffer.from([0, 0, 0, 9, 1]), Rep.ERR_INVALID],
      [Opt.INFO, encodeInfoRequest('nope', []), Rep.ERR_UNKNOWN],
      [Opt.GO, encodeInfoRequest('nope', []), Rep.ERR_UNKNOWN],
    ];
    for (const [option, data, expected] of refusals) {
      p.sendOption(option, data);
      const reply = await p.readOptionReply();
      expect({ option: reply.option, type: reply.type }).toEqual({ option, type: expected });
    }
    p.sendOption(Opt.GO, encodeInfoRequest('disk0', [Info.NAME, Info.BLOCK_SIZE]));
    const infos = [];
    for (;;) {
      const reply = await p.readOptionReply();
      if (reply.type === Rep.ACK) break;
      expect(reply.type).toBe(Rep.INFO);
      infos.push(decodeInfoReply(reply.data));
    }
    expect(infos).toContainEqual({ type: 'export', size: SIZE, transmissionFlags: 0x16d });
    expect(infos).toContainEqual({ type: 'name', text: 'disk0' });
    expect(infos).toContainEqual({
      type: 'block-size',
      minimum: 1,
      preferred: 4096,
      maximum: 32 * MiB,
    });
    p.sendRequest(Cmd.FLUSH, 0, 7n, 0, 0);
    expect(await p.readReply()).toMatchObject({ cookie: 7n, errno: 0 });
  });

  it('acks NBD_OPT_ABORT and closes', async () => {
    const p = await peer();
    await p.greet();
    p.sendOption(Opt.ABORT);
    expect((await p.readOptionReply()).type).toBe(Rep.ACK);
    await p.closed();
  });

  it('NBD_OPT_EXPORT_NAME: closes for an unknown name, answers size and flags for ours', async () => {
    const bad = await peer();
    await bad.greet();
    bad.sendOption(Opt.EXPORT_NAME, Buffer.from('nope'));
    await bad.closed();

    const good = await peer();
    await good.greet(ClientFlag.FIXED_NEWSTYLE); // no NO_ZEROES: the 124 zero bytes follow
    good.sendOption(Opt.EXPORT_NAME, Buffer.from('disk0'));
    const reply = await good.mustRead(EXPORT_NAME_REPLY_SIZE + EXPORT_NAME_ZEROES);
    expect(readU64(reply, 0)).toBe(SIZE);
    expect(reply.readUInt16BE(8)).toBe(0x16d);
    expect(reply.subarray(10).every((b) => b === 0)).toBe(true);
    good.sendRequest(Cmd.READ, 0, 1n, 0, 8);
    expect(await good.readReply()).toMatchObject({ cookie: 1n, errno: 0 });
  });
});

describe('NBD server against libnbd with strict mode off', () => {
  it('returns the right errno for requests libnbd would normally refuse', async () => {
    const script = `
import errno, json, sys, nbd
h = nbd.NBD()
h.set_strict_mode(0)
h.connect_uri(sys.argv[1])
size = h.get_size()
out = {}
def attempt(name, fn):
    try:
        fn()
        out[name] = 'ok'
    except nbd.Error as e:
        out[name] = errno.errorcode.get(e.errnum, str(e.errnum))
attempt('read_past_end', lambda: h.pread(4096, size - 1024))
attempt('read_too_big', lambda: h.pread(33 * 1024 * 1024, 0))
attempt('write_past_end', lambda: h.pwrite(b'x' * 4096, size - 1024))
attempt('trim_past_end', lambda: h.trim(8192, size - 4096))
attempt('zero_past_end', lambda: h.zero(8192, size - 4096))
attempt('read_with_df', lambda: h.pread(512, 0, nbd.CMD_FLAG_DF))
attempt('zero_fast', lambda: h.zero(4096, 0, nbd.CMD_FLAG_FAST_ZERO))
attempt('read_ok', lambda: h.pread(512, 0))
h.shutdown()
print(json.dumps(out))
`;
    const result = await run('/usr/bin/python3', ['-c', script, s.uri]);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout.toString())).toEqual({
      read_past_end: 'EINVAL',
      read_too_big: 'EINVAL',
      write_past_end: 'ENOSPC',
      trim_past_end: 'EINVAL',
      zero_past_end: 'ENOSPC',
      read_with_df: 'EINVAL',
      zero_fast: 'EINVAL',
      read_ok: 'ok',
    });
    await expectStillServing();
  });
});
