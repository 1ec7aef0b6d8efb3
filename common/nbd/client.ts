/**
 * Our NBD client (the workload tool, tests and benchmarks use it): fixed newstyle, NBD_OPT_GO,
 * simple replies only, pipelined. Requests go out as soon as they are made; replies are
 * matched to requests by cookie, so any number may be in flight and may complete out of order.
 *
 * Reads and writes longer than the server's maximum payload are split into several requests;
 * TRIM and WRITE_ZEROES (no payload) are split at 1 GiB to stay inside the u32 length field.
 *
 * Errors: an error reply rejects that request with NbdRequestError carrying the errno name
 * (EINVAL, EIO, ENOSPC, ESHUTDOWN…). A broken connection rejects everything in flight with
 * SS_UNAVAILABLE; a reply that makes no sense (bad magic, unknown cookie) with SS_PROTOCOL.
 * After an ESHUTDOWN the client disconnects softly once nothing is in flight (proto.md MUST).
 */
import { connect, type Socket } from 'node:net';
import { SecondsiteError, badInput } from '../errors/errors.ts';
import { clientHandshake, type NegotiatedExport } from './client-handshake.ts';
import {
  Cmd,
  CmdFlag,
  Errno,
  SIMPLE_REPLY_MAGIC,
  SIMPLE_REPLY_SIZE,
  decodeSimpleReply,
  encodeRequest,
  errnoName,
} from './protocol.ts';
import { SocketReader } from './socket-reader.ts';

export class NbdRequestError extends Error {
  /** The errno name, e.g. 'EINVAL'. */
  readonly errno: string;
  readonly errnoValue: number;

  constructor(errnoValue: number, what: string) {
    const errno = errnoName(errnoValue);
    super(`NBD ${what} failed: ${errno}`);
    this.name = 'NbdRequestError';
    this.errno = errno;
    this.errnoValue = errnoValue;
  }
}

export interface RequestOptions {
  /** Force unit access: the server replies only once the data is durable. */
  readonly fua?: boolean;
}

interface Pending {
  readonly type: number;
  readonly length: number;
  readonly what: string;
  readonly resolve: (data: Buffer | undefined) => void;
  readonly reject: (err: Error) => void;
}

const NO_PAYLOAD_SPLIT = 1024 * 1024 * 1024;
/** NBD_CMD_DISC gets no reply, so its cookie is never matched. */
const DISC_REQUEST = encodeRequest({ flags: 0, type: Cmd.DISC, cookie: 0n, offset: 0, length: 0 });
const COMMAND_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(Cmd).map(([name, value]) => [value, name]),
);

/** Splits `nbd+unix:///EXPORT?socket=PATH` (the empty export name is allowed). */
export function parseNbdUnixUri(uri: string): { exportName: string; socketPath: string } {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw badInput('uri', `not a URI: ${uri}`);
  }
  if (url.protocol !== 'nbd+unix:') throw badInput('uri', `only nbd+unix:// is supported: ${uri}`);
  const socketPath = url.searchParams.get('socket');
  if (!socketPath) throw badInput('uri', `missing ?socket=PATH: ${uri}`);
  return { exportName: decodeURIComponent(url.pathname.replace(/^\//, '')), socketPath };
}

export class NbdClient {
  readonly size: number;
  readonly transmissionFlags: number;
  /** Largest single READ/WRITE request; longer calls are split. */
  readonly maxPayload: number;
  private readonly pending = new Map<bigint, Pending>();
  private nextCookie = 1n;
  private failure: Error | undefined;
  private serverShuttingDown = false;
  private closed: Promise<void> | undefined;
  private idleWaiters: Array<() => void> = [];

  private constructor(
    private readonly socket: Socket,
    private readonly reader: SocketReader,
    negotiated: NegotiatedExport,
  ) {
    this.size = negotiated.size;
    this.transmissionFlags = negotiated.transmissionFlags;
    this.maxPayload = negotiated.maxPayload;
    socket.on('error', (err) => this.fail(new SecondsiteError('SS_UNAVAILABLE', err.message)));
    void this.readReplies();
  }

  static async connect(uri: string): Promise<NbdClient> {
    const { exportName, socketPath } = parseNbdUnixUri(uri);
    const socket = connect(socketPath);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', (err) =>
        reject(
          new SecondsiteError('SS_UNAVAILABLE', `cannot connect to ${socketPath}: ${err.message}`),
        ),
      );
    });
    const reader = new SocketReader(socket);
    try {
      return new NbdClient(socket, reader, await clientHandshake(socket, reader, exportName));
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const pieces = split(offset, length, this.maxPayload).map(([o, n]) =>
      this.request(Cmd.READ, 0, o, n),
    );
    const parts = (await Promise.all(pieces)).map((b) => b ?? Buffer.alloc(0));
    return parts.length === 1 && parts[0] ? parts[0] : Buffer.concat(parts);
  }

  async write(offset: number, data: Buffer, opts: RequestOptions = {}): Promise<void> {
    const flags = opts.fua ? CmdFlag.FUA : 0;
    const pieces = split(offset, data.length, this.maxPayload).map(([o, n]) =>
      this.request(Cmd.WRITE, flags, o, n, data.subarray(o - offset, o - offset + n)),
    );
    await Promise.all(pieces);
  }

  async trim(offset: number, length: number, opts: RequestOptions = {}): Promise<void> {
    await this.noPayload(Cmd.TRIM, offset, length, opts);
  }

  async writeZeroes(offset: number, length: number, opts: RequestOptions = {}): Promise<void> {
    await this.noPayload(Cmd.WRITE_ZEROES, offset, length, opts);
  }

  async flush(): Promise<void> {
    await this.request(Cmd.FLUSH, 0, 0, 0);
  }

  /** Waits for requests in flight, sends NBD_CMD_DISC and closes the socket. */
  close(): Promise<void> {
    this.closed ??= this.disconnect();
    return this.closed;
  }

  /**
   * Sends one raw request, bypassing client-side splitting: for tests that need a request the
   * high-level calls would never make (odd flags, out-of-range offsets).
   */
  request(
    type: number,
    flags: number,
    offset: number,
    length: number,
    payload?: Buffer,
  ): Promise<Buffer | undefined> {
    const what = `${COMMAND_NAMES[type] ?? `command ${type}`} at ${offset}+${length}`;
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) {
      return Promise.reject(
        new SecondsiteError('SS_UNAVAILABLE', `NBD client is closed (${what})`),
      );
    }
    if (this.serverShuttingDown) {
      return Promise.reject(new NbdRequestError(Errno.ESHUTDOWN, what));
    }
    const cookie = this.nextCookie++;
    return new Promise((resolve, reject) => {
      this.pending.set(cookie, { type, length, what, resolve, reject });
      const header = encodeRequest({ flags, type, cookie, offset, length });
      if (payload && payload.length > 0) {
        this.socket.cork();
        this.socket.write(header);
        this.socket.write(payload);
        this.socket.uncork();
      } else {
        this.socket.write(header);
      }
    });
  }

  private async noPayload(type: number, offset: number, length: number, opts: RequestOptions) {
    const flags = opts.fua ? CmdFlag.FUA : 0;
    await Promise.all(
      split(offset, length, NO_PAYLOAD_SPLIT).map(([o, n]) => this.request(type, flags, o, n)),
    );
  }

  private async readReplies(): Promise<void> {
    for (;;) {
      const header = await this.reader.read(SIMPLE_REPLY_SIZE);
      if (!header) {
        this.fail(new SecondsiteError('SS_UNAVAILABLE', 'NBD server closed the connection'));
        return;
      }
      const reply = decodeSimpleReply(header);
      const p = this.pending.get(reply.cookie);
      if (reply.magic !== SIMPLE_REPLY_MAGIC || !p) {
        const detail = { magic: reply.magic, cookie: String(reply.cookie) };
        this.fail(new SecondsiteError('SS_PROTOCOL', 'NBD server sent a bad reply', detail));
        this.socket.destroy();
        return;
      }
      let data: Buffer | undefined;
      if (reply.errno === 0 && p.type === Cmd.READ && p.length > 0) {
        const body = await this.reader.read(p.length);
        if (!body) continue; // the next read sees the closed socket and fails everything
        data = body;
      }
      this.pending.delete(reply.cookie);
      this.checkIdle();
      if (reply.errno === 0) p.resolve(data);
      else p.reject(new NbdRequestError(reply.errno, p.what));
      if (reply.errno === Errno.ESHUTDOWN) this.serverShuttingDown = true;
      if (this.serverShuttingDown && this.pending.size === 0) void this.close();
    }
  }

  private async disconnect(): Promise<void> {
    await this.whenIdle();
    if (this.socket.destroyed) return;
    const gone = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    if (!this.failure) this.socket.write(DISC_REQUEST);
    this.socket.end();
    await gone;
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
    this.checkIdle();
  }

  private whenIdle(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private checkIdle(): void {
    if (this.pending.size !== 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }
}

function split(offset: number, length: number, max: number): Array<[number, number]> {
  if (length === 0) return [[offset, 0]];
  const out: Array<[number, number]> = [];
  for (let done = 0; done < length; done += max) {
    out.push([offset + done, Math.min(max, length - done)]);
  }
  return out;
}
