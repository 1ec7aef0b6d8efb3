/**
 * One connection's transmission phase: reads requests continuously, runs each against the
 * device as soon as it is whole (many in flight per connection) and sends a simple reply
 * when it settles, so replies may leave out of order (proto.md allows it; cookies match them).
 *
 * Request flow:
 *   1. wait for capacity (bytes/requests in flight, reply bytes not yet sent);
 *   2. read the 28-byte header; a bad magic means the stream cannot be trusted → hard close;
 *   3. WRITE: a payload over MAX_PAYLOAD cannot be skipped safely → hard close; otherwise
 *      read it whole (a view into the socket chunk when it sits in one: no copy);
 *   4. DISC: let every request in flight reply, then end the connection;
 *   5. edge check (request-check.ts) → error reply; shutting down → ESHUTDOWN; else call
 *      the device and reply when it settles (a rejection → EIO, or ENOSPC for a full disk).
 *
 * Backpressure: at most MAX_INFLIGHT_BYTES of payload/read data and MAX_INFLIGHT_REQUESTS in
 * flight, and at most MAX_UNSENT reply bytes queued on a client that does not read; past
 * those the loop stops reading, the SocketReader pauses the socket, and the kernel's socket
 * buffer pushes back on the client. Worst case per connection: 64 MiB in flight + 64 MiB
 * unsent + a 32 MiB payload being read ≈ 160 MiB.
 */
import type { Socket } from 'node:net';
import type { Logger } from '../../../common/log/log.ts';
import {
  Cmd,
  CmdFlag,
  Errno,
  MAX_PAYLOAD,
  REQUEST_MAGIC,
  REQUEST_SIZE,
  decodeRequest,
  encodeSimpleReply,
  errnoName,
  type Request,
} from '../../../common/nbd/protocol.ts';
import type { SocketReader } from '../../../common/nbd/socket-reader.ts';
import type { BlockDevice } from './block-device.ts';
import type { InFlight } from './in-flight.ts';
import { checkRequest } from './request-check.ts';

const MAX_INFLIGHT_BYTES = 64 * 1024 * 1024;
const MAX_INFLIGHT_REQUESTS = 512;
const MAX_UNSENT = 64 * 1024 * 1024;

/** Why the loop ended: the client left, asked to disconnect, or broke the protocol. */
export type SessionEnd = 'eof' | 'disconnect' | 'protocol-error';

interface Pending {
  readonly cookie: bigint;
  readonly bytes: number;
  replied: boolean;
}

export interface SessionContext {
  readonly socket: Socket;
  readonly reader: SocketReader;
  readonly device: BlockDevice;
  readonly inFlight: InFlight;
  readonly log: Logger;
}

export class TransmissionSession {
  private readonly pending = new Set<Pending>();
  private inflightBytes = 0;
  private shuttingDown = false;
  private wake: (() => void) | undefined;

  constructor(private readonly ctx: SessionContext) {
    ctx.socket.on('drain', () => this.notify());
    ctx.socket.on('close', () => this.notify());
  }

  /** Requests whose device call has not settled. */
  get inFlightCount(): number {
    return this.pending.size;
  }

  async run(): Promise<SessionEnd> {
    const { reader, log } = this.ctx;
    for (;;) {
      if (!(await this.waitUntil(() => this.hasCapacity()))) return 'eof';
      const header = await reader.read(REQUEST_SIZE);
      if (!header) return 'eof';
      const req = decodeRequest(header);
      if (req.magic !== REQUEST_MAGIC) {
        log.warn({ magic: req.magic }, 'nbd bad request magic; closing');
        return 'protocol-error';
      }
      let payload: Buffer | undefined;
      if (req.type === Cmd.WRITE) {
        if (req.length > MAX_PAYLOAD) {
          log.warn({ length: req.length }, 'nbd WRITE payload over the maximum; closing');
          return 'protocol-error';
        }
        const data = await reader.read(req.length);
        if (!data) return 'eof';
        payload = data;
      }
      if (req.type === Cmd.DISC) {
        await this.waitUntil(() => this.pending.size === 0);
        return 'disconnect';
      }
      this.dispatch(req, payload);
    }
  }

  /**
   * Export closing: every request still waiting on the device is answered ESHUTDOWN now (its
   * device call finishes unseen) and every later request gets ESHUTDOWN without running.
   */
  shutdown(): void {
    this.shuttingDown = true;
    for (const p of this.pending) {
      if (!p.replied) {
        p.replied = true;
        this.reply(p.cookie, Errno.ESHUTDOWN);
      }
    }
  }

  private dispatch(req: Request, payload: Buffer | undefined): void {
    const errno = checkRequest(req, this.ctx.device.size);
    if (errno !== 0) {
      this.ctx.log.warn(
        { type: req.type, flags: req.flags, offset: req.offset, length: req.length },
        `nbd request refused with ${errnoName(errno)}`,
      );
      this.reply(req.cookie, errno);
      return;
    }
    if (this.shuttingDown) {
      this.reply(req.cookie, Errno.ESHUTDOWN);
      return;
    }
    const bytes = req.type === Cmd.READ || req.type === Cmd.WRITE ? req.length : 0;
    const p: Pending = { cookie: req.cookie, bytes, replied: false };
    this.pending.add(p);
    this.inflightBytes += bytes;
    this.ctx.inFlight
      .run(() => this.execute(req, payload))
      .then(
        (data) => this.finish(p, 0, data),
        (err: unknown) => {
          this.ctx.log.warn({ err, type: req.type, offset: req.offset }, 'nbd device call failed');
          this.finish(p, errnoFor(err));
        },
      );
  }

  private async execute(req: Request, payload: Buffer | undefined): Promise<Buffer | undefined> {
    const { device } = this.ctx;
    const fua = (req.flags & CmdFlag.FUA) !== 0;
    if (req.length === 0 && req.type !== Cmd.FLUSH) {
      // Zero-length ranges change nothing; FUA still asks for durability of nothing.
      if (fua) await device.flush();
      return req.type === Cmd.READ ? Buffer.alloc(0) : undefined;
    }
    switch (req.type) {
      case Cmd.READ: {
        const data = await device.read(req.offset, req.length);
        // A short or long buffer would desynchronise the reply stream for the client.
        if (data.length !== req.length)
          throw new Error(`device read returned ${data.length} bytes`);
        return data;
      }
      case Cmd.WRITE:
        await device.write(req.offset, payload ?? Buffer.alloc(0), fua);
        return undefined;
      case Cmd.TRIM:
        await device.trim(req.offset, req.length, fua);
        return undefined;
      case Cmd.WRITE_ZEROES:
        await device.writeZeroes(req.offset, req.length, fua);
        return undefined;
      case Cmd.FLUSH:
        await device.flush();
        return undefined;
      default:
        throw new Error(`unexpected command ${req.type} past the edge check`);
    }
  }

  private finish(p: Pending, errno: number, data?: Buffer): void {
    this.pending.delete(p);
    this.inflightBytes -= p.bytes;
    if (!p.replied) {
      p.replied = true;
      this.reply(p.cookie, errno, errno === 0 ? data : undefined);
    }
    this.notify();
  }

  private reply(cookie: bigint, errno: number, data?: Buffer): void {
    const { socket } = this.ctx;
    if (socket.destroyed || !socket.writable) return;
    const header = encodeSimpleReply(errno, cookie);
    if (data && data.length > 0) {
      socket.cork();
      socket.write(header);
      socket.write(data);
      socket.uncork();
    } else {
      socket.write(header);
    }
  }

  private hasCapacity(): boolean {
    return (
      this.inflightBytes < MAX_INFLIGHT_BYTES &&
      this.pending.size < MAX_INFLIGHT_REQUESTS &&
      this.ctx.socket.writableLength < MAX_UNSENT
    );
  }

  /** Resolves true once `ready()` holds, false if the socket closed first. */
  private async waitUntil(ready: () => boolean): Promise<boolean> {
    while (!ready()) {
      if (this.ctx.socket.destroyed) return false;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    return true;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/** Disk-full conditions keep their meaning (proto.md: map EDQUOT and EFBIG to ENOSPC). */
function errnoFor(err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG') return Errno.ENOSPC;
  return Errno.EIO;
}
