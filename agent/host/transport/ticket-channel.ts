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
import { FrameOpener, FrameSealer, MAX_SEALED_FRAME } from '../../../common/tickets/frames.ts';
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
  /** The reader, holding whatever arrived after the frame (the first sealed frames). */
  readonly reader: FrameReader;
  /** Frames already split off after this one. */
  readonly rest: Buffer[];
}

/** Writes one handshake frame. */
export function writeHandshake(socket: Socket, message: TicketHandshakeMsg): Buffer {
  const bytes = codecs.handshake().encode(message);
  socket.write(frame(bytes));
  return bytes;
}

/**
 * Reads one handshake frame. The reader allows sealed-frame sizes (it is handed on to the
 * channel), so the handshake's own, smaller limit is checked here.
 */
export function readHandshake(
  socket: Socket,
  reader = new FrameReader(MAX_SEALED_FRAME),
  timeoutMs = HANDSHAKE_TIMEOUT_MS,
): Promise<HandshakeFrame> {
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
        frames = reader.push(chunk);
      } catch (e) {
        return done(e as Error);
      }
      const [first, ...rest] = frames;
      if (!first) return;
      socket.pause();
      if (first.length > HANDSHAKE_MAX_FRAME) {
        return done(new SecondsiteError('SS_PROTOCOL', 'handshake frame too large'));
      }
      try {
        const message = codecs.handshake().decode(first);
        done(undefined, { bytes: first, message, reader, rest });
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
  readonly reader: FrameReader;
  readonly rest: Buffer[];
  /** What grpc-js reports as the peer (the server uses a ticket-peers key). */
  readonly remoteAddress: string;
}

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
    this.opener = new FrameOpener(o.receiveKey, o.reader);
    this.socket.on('data', (chunk: Buffer) => this.receive(() => this.opener.push(chunk)));
    this.socket.on('end', () => {
      if (!this.opener.closedCleanly) this.destroy(truncated());
    });
    this.socket.on('error', (e) => this.destroy(e));
    this.socket.on('close', () => {
      if (!this.destroyed && !this.opener.closedCleanly) this.destroy(truncated());
    });
    if (o.rest.length > 0) this.receive(() => this.opener.openAll(o.rest));
  }

  private receive(open: () => ReturnType<FrameOpener['push']>): void {
    let frames;
    try {
      frames = open();
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
    let ok = true;
    try {
      this.socket.cork();
      for (const { chunk } of chunks) {
        for (const b of this.sealer.data(chunk)) ok = this.socket.write(b) && ok;
      }
    } catch (e) {
      callback(e as Error);
      return;
    } finally {
      this.socket.uncork();
    }
    if (ok) callback();
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
