/**
 * Our NBD server driven by real clients (qemu-io, qemu-img, nbdinfo, nbdcopy): what they write
 * lands in the raw file byte for byte, and what they read back is what a shadow file written
 * with the same operations holds.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { serveExport } from '../../agent/host/nbd/server.ts';
import { NbdClient } from '../../common/nbd/client.ts';
import { isSecondsiteError } from '../../common/errors/errors.ts';
import { silentLogger } from '../../common/log/log.ts';
import {
  MiB,
  run,
  serveTempDisk,
  sha256,
  sha256File,
  waitFor,
  type ServedDisk,
} from '../helpers/nbd.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function served(
  size: number,
  opts?: Parameters<typeof serveTempDisk>[1],
): Promise<ServedDisk> {
  const s = await serveTempDisk(size, opts);
  cleanups.push(() => s.stop());
  return s;
}

function qemuIo(uri: string, ...commands: string[]): ReturnType<typeof run> {
  return run('qemu-io', ['-f', 'raw', uri, ...commands.flatMap((c) => ['-c', c])]);
}

/** Applies the same edits to a plain file that the test sends through NBD. */
function shadowFile(dir: string, size: number, edits: Array<[number, number, number]>): string {
  const path = join(dir, 'shadow.raw');
  writeFileSync(path, Buffer.alloc(0));
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.alloc(1), 0, 1, size - 1);
    for (const [offset, length, byte] of edits)
      writeSync(fd, Buffer.alloc(length, byte), 0, length, offset);
  } finally {
    closeSync(fd);
  }
  return path;
}

describe('NBD server with qemu-io and qemu-img', () => {
  it('writes patterns (plain, FUA, zeroes, discard) that read back and match a shadow file', async () => {
    const size = 32 * MiB;
    const s = await served(size);
    const io = await qemuIo(
      s.uri,
      'write -P 0xab 0 1M',
      'write -f -P 0xcd 1M 1M',
      'write -P 0x77 4M 2M',
      'write -z 4M 1M',
      'write -z -f 5M 64k',
      'discard 5632k 256k',
      'write -P 0x11 31M 1M',
      'flush',
    );
    expect(io.code, io.stderr + io.stdout.toString()).toBe(0);

    const check = await qemuIo(
      s.uri,
      'read -P 0xab 0 1M',
      'read -P 0xcd 1M 1M',
      'read -P 0 2M 2M',
      'read -P 0 4M 1088k',
      'read -P 0x77 5184k 448k',
      'read -P 0 5632k 256k',
      'read -P 0x77 5888k 256k',
      'read -P 0x11 31M 1M',
    );
    expect(check.code, check.stderr + check.stdout.toString()).toBe(0);
    expect(check.stdout.toString()).not.toMatch(/Pattern verification failed/);

    const shadow = shadowFile(s.dir, size, [
      [0, MiB, 0xab],
      [MiB, MiB, 0xcd],
      [4 * MiB, 2 * MiB, 0x77],
      [4 * MiB, MiB, 0],
      [5 * MiB, 64 * 1024, 0],
      [5632 * 1024, 256 * 1024, 0],
      [31 * MiB, MiB, 0x11],
    ]);
    const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', shadow, s.uri]);
    expect(cmp.code, cmp.stderr + cmp.stdout.toString()).toBe(0);
    expect(sha256File(s.diskPath)).toBe(sha256File(shadow));
    expect(statSync(s.diskPath).size).toBe(size);
  });

  it('qemu-img compare sees a difference when the shadow differs', async () => {
    const size = 16 * MiB;
    const s = await served(size);
    expect((await qemuIo(s.uri, 'write -P 0x5a 8M 4k')).code).toBe(0);
    const shadow = shadowFile(s.dir, size, [[8 * MiB, 4096, 0x5b]]);
    const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', shadow, s.uri]);
    expect(cmp.code).toBe(1);
  });

  it('serves two clients at once on one export', async () => {
    const s = await served(16 * MiB);
    const a = NbdClient.connect(s.uri);
    const b = NbdClient.connect(s.uri);
    const [ca, cb] = await Promise.all([a, b]);
    cleanups.push(
      () => ca.close(),
      () => cb.close(),
    );
    await waitFor(() => s.exp.connections() === 2, 'two connections');
    const [ioA, ioB] = await Promise.all([
      qemuIo(s.uri, 'write -P 0xa1 0 2M'),
      qemuIo(s.uri, 'write -P 0xb2 2M 2M'),
    ]);
    expect(ioA.code).toBe(0);
    expect(ioB.code).toBe(0);
    expect((await ca.read(2 * MiB, 4096)).equals(Buffer.alloc(4096, 0xb2))).toBe(true);
    expect((await cb.read(0, 4096)).equals(Buffer.alloc(4096, 0xa1))).toBe(true);
  });

  it('refuses an unknown export name and keeps serving', async () => {
    const s = await served(16 * MiB);
    const wrong = s.uri.replace('/disk0?', '/nope?');
    const io = await qemuIo(wrong, 'read 0 4k');
    expect(io.code).not.toBe(0);
    expect((await qemuIo(s.uri, 'read -P 0 0 4k')).code).toBe(0);
  });
});

describe('NBD server with libnbd tools', () => {
  it('nbdinfo reports size, flags, block sizes and the description', async () => {
    const s = await served(16 * MiB, { description: 'test disk' });
    const info = await run('nbdinfo', ['--json', s.uri]);
    expect(info.code, info.stderr).toBe(0);
    const exp = JSON.parse(info.stdout.toString()).exports[0];
    expect(exp).toMatchObject({
      'export-name': 'disk0',
      description: 'test disk',
      'export-size': 16 * MiB,
      is_read_only: false,
      can_flush: true,
      can_fua: true,
      can_trim: true,
      can_zero: true,
      can_multi_conn: true,
      block_size_minimum: 1,
      block_size_preferred: 4096,
      block_size_maximum: 32 * MiB,
    });
  });

  it('nbdinfo --list lists the one export', async () => {
    const s = await served(16 * MiB, { exportName: 'vm1-disk0', description: 'listed' });
    const list = await run('nbdinfo', ['--list', '--json', `nbd+unix:///?socket=${s.socketPath}`]);
    expect(list.code, list.stderr).toBe(0);
    const exports = JSON.parse(list.stdout.toString()).exports;
    expect(exports).toHaveLength(1);
    expect(exports[0]).toMatchObject({ 'export-name': 'vm1-disk0', description: 'listed' });
  });

  it('nbdcopy copies a file in over four connections and hashes back the same', async () => {
    const size = 16 * MiB;
    const s = await served(size);
    const src = join(s.dir, 'src.raw');
    const data = randomBytes(size);
    writeFileSync(src, data);
    const copyIn = await run('nbdcopy', ['--connections=4', '--flush', src, s.uri]);
    expect(copyIn.code, copyIn.stderr).toBe(0);
    const copyOut = await run('nbdcopy', [s.uri, '-']);
    expect(copyOut.code, copyOut.stderr).toBe(0);
    expect(sha256(copyOut.stdout)).toBe(sha256(data));
    expect(sha256File(s.diskPath)).toBe(sha256(data));
  });
});

describe('NBD export socket', () => {
  it('is mode 0600 and removed on close; a stale socket is replaced', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ss-nbd-sock-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const socketPath = join(dir, 'd.sock');
    // A socket file left behind by a dead process: python binds it and exits without unlinking.
    const bind = `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(socketPath)})`;
    expect((await run('/usr/bin/python3', ['-c', bind])).code).toBe(0);
    expect(statSync(socketPath).isSocket()).toBe(true);
    const s = await serveTempDisk(4 * MiB);
    cleanups.push(() => s.stop());
    const exp = await serveExport({
      socketPath,
      exportName: 'x',
      device: s.disk,
      log: silentLogger,
    });
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
    const client = await NbdClient.connect(exp.uri);
    await client.close();
    await exp.close();
    expect(() => statSync(socketPath)).toThrow();
  });

  it('fails with SS_IO when it cannot listen', async () => {
    const s = await served(4 * MiB);
    const err = await serveExport({
      socketPath: join(s.dir, 'missing-dir', 'd.sock'),
      exportName: 'x',
      device: s.disk,
      log: silentLogger,
    }).catch((e: unknown) => e);
    expect(isSecondsiteError(err) && err.code).toBe('SS_IO');
  });

  it('refuses to replace a path that is not a socket', async () => {
    const s = await served(4 * MiB);
    const err = await serveExport({
      socketPath: s.diskPath,
      exportName: 'x',
      device: s.disk,
      log: silentLogger,
    }).catch((e: unknown) => e);
    expect(isSecondsiteError(err) && err.code).toBe('SS_BAD_INPUT');
    expect(statSync(s.diskPath).size).toBe(4 * MiB);
  });
});
