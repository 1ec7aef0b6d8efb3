/**
 * The byte stream of one 8083 connection after its AP exchange: a Duplex whose writes leave as
 * sealed frames (common/tickets/frames.ts) on the TCP socket and whose reads are the opened
 * frames of the other direction. gRPC's HTTP/2 runs on top of it unchanged: the client's
 * grpc-js dials through ticket-credentials.ts, the server injects it into the replication
 * gRPC server (ticket-server.ts).
 *
 * Ends: a local end() sends the CLOSE frame then ends the socket. A socket that ends without
 * the peer's CLOSE frame, or any frame that fails its check, destroys the stream with
 * SS_PROTOCOL: truncation is never taken for a clean end of data.
 *
 * Also here: reading and writing the handshake frames that precede the sealed ones.
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { FrameOpener, FrameSealer } from '../../../common/tickets/frames.ts';
import {
  HANDSHAKE_MAX_FRAME,
  codecs,
  type TicketHandshakeMsg,
} from '../../../common/tickets/messages.ts';
import { FrameReader, frame } from '../../../common/wire/length-prefixed.ts';

/** A peer that has not finished its half of the handshake within this is dropped. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface HandshakeFrame {
  /** The frame's bytes as sent (hashed into the reply and the channel keys). */
  readonly bytes: Buffer;
  readonly message: TicketHandshakeMsg;
  /** Bytes that arrived after the frame (the first sealed frames), as received. */
  readonly rest: Buffer[];
}

/** Writes one handshake frame. */
export function writeHandshake(socket: Socket, message: TicketHandshakeMsg): Buffer {
  const bytes = codecs.handshake().encode(message);
  socket.write(frame(bytes));
  return bytes;
}

/** Reads one handshake frame (at most HANDSHAKE_MAX_FRAME bytes) and what followed it. */
export function readHandshake(
  socket: Socket,
  timeoutMs = HANDSHAKE_TIMEOUT_MS,
): Promise<HandshakeFrame> {
  const reader = new FrameReader(HANDSHAKE_MAX_FRAME);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => done(new SecondsiteError('SS_TIMEOUT', 'ticket handshake timed out')),
      timeoutMs,
    );
    function done(err: Error | undefined, result?: HandshakeFrame): void {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onEnd);
      socket.off('close', onEnd);
      if (err) reject(err);
      else resolve(result!);
    }
    function onData(chunk: Buffer): void {
      let frames: Buffer[];
      try {
        frames = reader.push(chunk, 1);
      } catch (e) {
        return done(e as Error);
      }
      const [first] = frames;
      if (!first) return;
      socket.pause();
      try {
        const message = codecs.handshake().decode(first);
        done(undefined, { bytes: first, message, rest: reader.remaining() });
      } catch {
        done(new SecondsiteError('SS_PROTOCOL', 'malformed handshake frame'));
      }
    }
    function onEnd(e?: unknown): void {
      done(
        e instanceof Error
          ? e
          : new SecondsiteError('SS_UNAVAILABLE', 'connection closed during the ticket handshake'),
      );
    }
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onEnd);
    socket.once('close', onEnd);
    socket.resume();
  });
}

export interface SealedStreamOptions {
  readonly socket: Socket;
  readonly sendKey: Buffer;
  readonly receiveKey: Buffer;
  /** Bytes that followed the handshake (readHandshake's `rest`). */
  readonly rest: Buffer[];
  /** What grpc-js reports as the peer (the server uses a ticket-peers key). */
  readonly remoteAddress: string;
}

/**
 * How much sealed data may wait in the socket's own buffer (what the kernel has not taken yet)
 * before a write is acknowledged to the stream above. node:http2 writes one batch at a time
 * (about 1 MiB) and prepares the next only once the previous one is acknowledged; waiting for
 * the socket to drain completely (the socket's 16 KiB high-water mark is below one frame)
 * made sealing, HTTP/2 framing and the kernel's sending take turns instead of overlapping.
 * 2 MiB keeps one batch queued behind the one being sent; memory per connection stays small.
 */
const SEND_AHEAD_BYTES = 2 * 1024 * 1024;

export class SealedStream extends Duplex {
  readonly remoteAddress: string;
  readonly remotePort: undefined = undefined;
  private readonly socket: Socket;
  private readonly sealer: FrameSealer;
  private readonly opener: FrameOpener;

  constructor(o: SealedStreamOptions) {
    super({ allowHalfOpen: false });
    this.socket = o.socket;
    this.remoteAddress = o.remoteAddress;
    this.sealer = new FrameSealer(o.sendKey);
    this.opener = new FrameOpener(o.receiveKey);
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk));
    this.socket.on('end', () => {
      if (!this.opener.closedCleanly) this.destroy(truncated());
    });
    this.socket.on('error', (e) => this.destroy(e));
    this.socket.on('close', () => {
      if (!this.destroyed && !this.opener.closedCleanly) this.destroy(truncated());
    });
    for (const chunk of o.rest) this.receive(chunk);
  }

  private receive(chunk: Buffer): void {
    if (this.destroyed) return;
    let frames;
    try {
      frames = this.opener.push(chunk);
    } catch (e) {
      this.destroy(e as Error);
      return;
    }
    for (const f of frames) {
      if (f.type === 'close') this.push(null);
      else if (!this.push(f.data)) this.socket.pause();
    }
  }

  override _read(): void {
    if (this.socket.isPaused()) this.socket.resume();
  }

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void,
  ): void {
    let sealed: Buffer[];
    try {
      sealed = this.sealer.data(chunks.map((c) => c.chunk));
    } catch (e) {
      callback(e as Error);
      return;
    }
    this.socket.cork();
    for (const b of sealed) this.socket.write(b);
    this.socket.uncork();
    if (this.socket.writableLength <= SEND_AHEAD_BYTES) callback();
    else this.socket.once('drain', () => callback());
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (e?: Error | null) => void) {
    this._writev([{ chunk, encoding: 'binary' }], callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    try {
      for (const b of this.sealer.close()) this.socket.write(b);
      this.socket.end(callback);
    } catch (e) {
      callback(e as Error);
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }

  // grpc-js and node:http2 tune the socket through the stream they were given.
  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay);
    return this;
  }
  setKeepAlive(enable?: boolean, delay?: number): this {
    this.socket.setKeepAlive(enable, delay);
    return this;
  }
  setTimeout(ms: number, cb?: () => void): this {
    this.socket.setTimeout(ms, cb);
    return this;
  }
  ref(): this {
    this.socket.ref();
    return this;
  }
  unref(): this {
    this.socket.unref();
    return this;
  }
}

function truncated(): SecondsiteError {
  return new SecondsiteError('SS_PROTOCOL', 'the 8083 connection was cut without its close frame', {
    reason: 'truncated',
  });
}
