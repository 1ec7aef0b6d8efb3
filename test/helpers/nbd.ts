/**
 * Helpers for NBD component tests: a temp raw disk served by our server, real client tools run
 * as child processes, and a raw-socket peer that speaks the protocol byte by byte so tests can
 * send what well-behaved clients never would.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveExport, type NbdExport } from '../../agent/host/nbd/server.ts';
import { RawDisk, createSparseImage } from '../../agent/host/vm/raw-disk.ts';
import { silentLogger, type Logger } from '../../common/log/log.ts';
import {
  ClientFlag,
  GREETING_SIZE,
  OPTION_REPLY_HEADER_SIZE,
  Opt,
  Rep,
  SIMPLE_REPLY_SIZE,
  decodeOptionReplyHeader,
  decodeSimpleReply,
  encodeInfoRequest,
  encodeOption,
  encodeRequest,
} from '../../common/nbd/protocol.ts';
import { SocketReader } from '../../common/nbd/socket-reader.ts';

export const MiB = 1024 * 1024;

export interface RunResult {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** Runs a command to completion; never throws on a non-zero exit (tests assert the code). */
export function run(cmd: string, args: string[], input?: Buffer): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }),
    );
    child.stdin.end(input);
  });
}

/** Polls until `check` holds; fails with `what` after the timeout. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha256File(path: string): string {
  return sha256(readFileSync(path));
}

export interface ServedDisk {
  readonly dir: string;
  readonly diskPath: string;
  readonly socketPath: string;
  readonly disk: RawDisk;
  readonly exp: NbdExport;
  readonly uri: string;
  /** Closes the export, then the disk, then removes the temp dir. */
  stop(): Promise<void>;
}

export async function serveTempDisk(
  size: number,
  opts: { exportName?: string; description?: string; log?: Logger } = {},
): Promise<ServedDisk> {
  const dir = mkdtempSync(join(tmpdir(), 'ss-nbd-'));
  const diskPath = join(dir, 'disk0.raw');
  const socketPath = join(dir, 'disk0.sock');
  createSparseImage(diskPath, size);
  const disk = RawDisk.open(diskPath);
  const exp = await serveExport({
    socketPath,
    exportName: opts.exportName ?? 'disk0',
    device: disk,
    log: opts.log ?? silentLogger,
    ...(opts.description !== undefined ? { description: opts.description } : {}),
  });
  let stopped = false;
  return {
    dir,
    diskPath,
    socketPath,
    disk,
    exp,
    uri: exp.uri,
    async stop() {
      if (stopped) return;
      stopped = true;
      await exp.close();
      await disk.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RawReply {
  readonly magic: number;
  readonly errno: number;
  readonly cookie: bigint;
}

/** A hand-driven NBD client over a plain socket. */
export class RawPeer {
  readonly reader: SocketReader;
  private readonly closedPromise: Promise<void>;

  private constructor(readonly socket: Socket) {
    this.reader = new SocketReader(socket);
    this.closedPromise = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
  }

  static async connect(socketPath: string): Promise<RawPeer> {
    const socket = connect(socketPath);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawPeer(socket);
  }

  /** Reads the greeting and sends fixed-newstyle + no-zeroes client flags. */
  async greet(clientFlags = ClientFlag.FIXED_NEWSTYLE | ClientFlag.NO_ZEROES): Promise<Buffer> {
    const greeting = await this.mustRead(GREETING_SIZE);
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(clientFlags >>> 0, 0);
    this.socket.write(flags);
    return greeting;
  }

  sendOption(option: number, data?: Buffer): void {
    this.socket.write(encodeOption(option, data));
  }

  async readOptionReply(): Promise<{ option: number; type: number; data: Buffer }> {
    const header = decodeOptionReplyHeader(await this.mustRead(OPTION_REPLY_HEADER_SIZE));
    const data = header.length > 0 ? await this.mustRead(header.length) : Buffer.alloc(0);
    return { option: header.option, type: header.type, data };
  }

  /** Full handshake into transmission with NBD_OPT_GO. */
  async go(exportName = 'disk0'): Promise<void> {
    await this.greet();
    this.sendOption(Opt.GO, encodeInfoRequest(exportName, []));
    for (;;) {
      const reply = await this.readOptionReply();
      if (reply.type === Rep.ACK) return;
      if (reply.type !== Rep.INFO) throw new Error(`GO refused: reply ${reply.type}`);
    }
  }

  sendRequest(type: number, flags: number, cookie: bigint, offset: number, length: number): void {
    this.socket.write(encodeRequest({ type, flags, cookie, offset, length }));
  }

  /** The next simple reply, or null once the server closed the connection. */
  async readReply(): Promise<RawReply | null> {
    const buf = await this.reader.read(SIMPLE_REPLY_SIZE);
    return buf ? decodeSimpleReply(buf) : null;
  }

  async mustRead(n: number): Promise<Buffer> {
    const buf = await this.reader.read(n);
    if (!buf) throw new Error('server closed the connection');
    return buf;
  }

  /** Resolves when the server has closed the connection (or we destroyed it). */
  closed(): Promise<void> {
    return this.closedPromise;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
