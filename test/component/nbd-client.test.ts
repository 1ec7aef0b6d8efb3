/**
 * Our NBD client against our server and against qemu-nbd (the reference server), plus the
 * server's shutdown behaviour seen through the client: ESHUTDOWN for requests in flight, close()
 * waiting for device calls, EIO when the device rejects.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { serveExport } from '../../agent/host/nbd/server.ts';
import { RawDisk, createSparseImage } from '../../agent/host/vm/raw-disk.ts';
import { isSecondsiteError } from '../../common/errors/errors.ts';
import { silentLogger } from '../../common/log/log.ts';
import { NbdClient, NbdRequestError } from '../../common/nbd/client.ts';
import { Cmd, CmdFlag } from '../../common/nbd/protocol.ts';
import { GatedDevice } from '../fakes/gated-device.ts';
import { MiB, RawPeer, serveTempDisk, waitFor } from '../helpers/nbd.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ss-nbdc-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** True once something accepts connections on the unix socket. */
function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

/** The client's whole feature set against a server at `uri` backed by the file at `path`. */
async function exerciseClient(uri: string, path: string, size: number): Promise<void> {
  const client = await NbdClient.connect(uri);
  expect(client.size).toBe(size);
  const shadow = Buffer.alloc(size);
  // Many writes in flight at once, in shuffled order; they never overlap, since NBD does not
  // order overlapping requests in flight.
  const writes: Array<Promise<void>> = [];
  for (let i = 0; i < 200; i++) {
    const offset = ((i * 37) % 200) * 5 * 4096;
    const data = randomBytes(4096 * (1 + (i % 4)));
    data.copy(shadow, offset);
    writes.push(client.write(offset, data, { fua: i % 10 === 0 }));
    if (i % 50 === 49) await Promise.all(writes.splice(0));
  }
  await Promise.all(writes);
  await client.flush();
  await client.trim(0, 64 * 1024);
  shadow.fill(0, 0, 64 * 1024);
  await client.writeZeroes(size - 128 * 1024, 128 * 1024, { fua: true });
  shadow.fill(0, size - 128 * 1024);
  const reads = [];
  for (let off = 0; off < size; off += MiB) reads.push(client.read(off, MiB));
  expect(Buffer.concat(await Promise.all(reads)).equals(shadow)).toBe(true);
  const err = await errorOf(client.read(size - 512, 4096));
  expect(err).toBeInstanceOf(NbdRequestError);
  expect((err as NbdRequestError).errno).toBe('EINVAL');
  await client.close();
  expect(readFileSync(path).equals(shadow)).toBe(true);
}

describe('NbdClient', () => {
  it('works against our server', async () => {
    const s = await serveTempDisk(16 * MiB);
    cleanups.push(() => s.stop());
    await exerciseClient(s.uri, s.diskPath, 16 * MiB);
    await waitFor(() => s.exp.connections() === 0, 'the client to disconnect');
  });

  it('works against qemu-nbd', async () => {
    const dir = tempDir();
    const file = join(dir, 'q.raw');
    const sock = join(dir, 'q.sock');
    createSparseImage(file, 16 * MiB);
    // --persistent: qemu-nbd would otherwise exit when the readiness probe disconnects;
    // --discard=unmap: by default it ignores TRIM, and the shadow expects trimmed = zero.
    const qemu: ChildProcess = spawn(
      'qemu-nbd',
      ['--persistent', '--discard=unmap', '-f', 'raw', '-k', sock, '-x', 'disk0', file],
      { stdio: 'ignore' },
    );
    const exited = new Promise((r) => qemu.once('exit', r));
    cleanups.push(async () => {
      qemu.kill('SIGTERM');
      const killLater = setTimeout(() => qemu.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killLater);
    });
    await waitFor(() => canConnect(sock), 'qemu-nbd to listen');
    await exerciseClient(`nbd+unix:///disk0?socket=${sock}`, file, 16 * MiB);
  });

  it('splits reads and writes longer than the maximum payload', async () => {
    const s = await serveTempDisk(48 * MiB);
    cleanups.push(() => s.stop());
    const client = await NbdClient.connect(s.uri);
    cleanups.push(() => client.close());
    expect(client.maxPayload).toBe(32 * MiB);
    const data = randomBytes(40 * MiB);
    await client.write(5 * MiB, data);
    expect((await client.read(5 * MiB, 40 * MiB)).equals(data)).toBe(true);
  });

  it('rejects an unknown export with SS_NOT_FOUND and a missing socket with SS_UNAVAILABLE', async () => {
    const s = await serveTempDisk(4 * MiB);
    cleanups.push(() => s.stop());
    const unknown = await errorOf(NbdClient.connect(s.uri.replace('/disk0?', '/other?')));
    expect(isSecondsiteError(unknown) && unknown.code).toBe('SS_NOT_FOUND');
    const missing = await errorOf(NbdClient.connect(`nbd+unix:///x?socket=${s.dir}/none.sock`));
    expect(isSecondsiteError(missing) && missing.code).toBe('SS_UNAVAILABLE');
    const bad = await errorOf(NbdClient.connect('nbd://host/x'));
    expect(isSecondsiteError(bad) && bad.code).toBe('SS_BAD_INPUT');
  });
});

async function gatedExport(size = 8 * MiB) {
  const dir = tempDir();
  const path = join(dir, 'g.raw');
  createSparseImage(path, size);
  const disk = RawDisk.open(path);
  cleanups.push(() => disk.close());
  const device = new GatedDevice(disk);
  cleanups.push(() => device.open());
  const socketPath = join(dir, 'g.sock');
  const exp = await serveExport({ socketPath, exportName: 'g', device, log: silentLogger });
  cleanups.push(() => exp.close());
  return { exp, device, path, socketPath };
}

describe('NBD server shutdown and device errors', () => {
  it('answers ESHUTDOWN in flight and later, and close() waits for the device', async () => {
    const { exp, device, path, socketPath } = await gatedExport();
    const client = await NbdClient.connect(exp.uri);
    const raw = await RawPeer.connect(socketPath);
    cleanups.push(() => raw.destroy());
    await raw.go('g');
    const write = errorOf(client.write(0, Buffer.alloc(4096, 1)));
    await waitFor(() => device.entered === 1, 'the write to reach the device');

    let closed = false;
    const closing = exp.close().then(() => (closed = true));
    expect(((await write) as NbdRequestError).errno).toBe('ESHUTDOWN');
    raw.sendRequest(Cmd.READ, 0, 9n, 0, 512);
    expect(await raw.readReply()).toMatchObject({ cookie: 9n, errno: 108 });
    expect(closed).toBe(false); // the device call is still running

    device.open();
    await closing;
    expect(exp.connections()).toBe(0);
    expect(existsSync(socketPath)).toBe(false);
    expect(statSync(path).size).toBe(8 * MiB);
    await raw.closed();
    const after = await errorOf(NbdClient.connect(exp.uri));
    expect(isSecondsiteError(after) && after.code).toBe('SS_UNAVAILABLE');
    await client.close();
  });

  it('maps a device rejection to EIO, or ENOSPC for a full disk, and keeps serving', async () => {
    const { exp, device } = await gatedExport();
    device.open();
    const client = await NbdClient.connect(exp.uri);
    cleanups.push(() => client.close());
    const zero = await errorOf(client.writeZeroes(0, 4096));
    expect((zero as NbdRequestError).errno).toBe('EIO');
    const trim = await errorOf(client.trim(0, 4096, { fua: true }));
    expect((trim as NbdRequestError).errno).toBe('ENOSPC');
    await client.write(0, Buffer.alloc(512, 7), { fua: true });
    expect((await client.read(0, 512)).equals(Buffer.alloc(512, 7))).toBe(true);
    expect(await client.request(Cmd.FLUSH, CmdFlag.FUA, 0, 0)).toBeUndefined();
  });

  it('stops reading a connection once 64 MiB of writes are in flight', async () => {
    const { exp, device, path } = await gatedExport(256 * MiB);
    const client = await NbdClient.connect(exp.uri);
    cleanups.push(() => client.close());
    const writes = [];
    for (let i = 0; i < 200; i++) writes.push(client.write(i * MiB, Buffer.alloc(MiB, i + 1)));
    // 64 MiB of 1 MiB writes fill the in-flight budget; the rest waits in socket buffers.
    await waitFor(() => device.entered === 64, 'the in-flight budget to fill');
    const other = await NbdClient.connect(exp.uri);
    await other.flush(); // a full round trip on the server's event loop
    await other.close();
    expect(device.entered).toBe(64);
    device.open();
    await Promise.all(writes);
    expect(device.entered).toBe(200);
    const file = readFileSync(path);
    for (const i of [0, 63, 64, 199]) expect(file[i * MiB + 17]).toBe(i + 1);
  });
});
