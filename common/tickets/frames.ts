/**
 * Sealed frames of the 8083 channel, after the AP exchange. Each direction has its own key
 * (ap-exchange.ts `deriveChannelKeys`) and its own counter, starting at 0:
 *
 *   frame = length (4 bytes, big-endian, of what follows) ‖ type (1 byte) ‖ ciphertext ‖ tag (16)
 *   nonce = 0x00000000 ‖ counter (8 bytes, big-endian)
 *   associated data = length ‖ type
 *
 * The receiver opens frame n only with counter n, so a replayed, reordered, dropped or
 * injected frame fails its tag and the connection is closed. The stream must end with a CLOSE
 * frame: a connection cut without one (a truncation) is an error, never a clean end of data.
 *
 * Sending: everything one write of the stream above hands over (node:http2 passes a batch of
 * buffers: 9-byte frame headers and 16 KiB DATA payloads, about 1 MiB per batch) is packed into
 * as few frames as fit, up to 256 KiB of plaintext each, never one frame per buffer: sealing
 * each buffer alone made 2 frames per 16 KiB, half of them 9 bytes, and per-frame costs (a
 * cipher, a header, 3 socket writes, on the other side a push into node:http2) then weighed
 * more than the AES itself. A frame's buffers go through one cipher, piece by piece (GCM is a
 * stream mode), and leave as they are: gathering them into one buffer first cost a copy of
 * every byte, measurably more CPU on the sender than the extra update calls.
 *
 * Receiving: a frame is deciphered as its bytes arrive (64 KiB socket reads, 256 KiB frames),
 * so no frame is ever reassembled; the plaintext pieces are held until the tag has been
 * checked and only then handed on. Nothing unauthenticated leaves the opener.
 *
 * Limits: at most 256 KiB of plaintext per frame (so at most 256 KiB of unauthenticated
 * plaintext held per connection). 2^53 frames per direction before the counter refuses (never
 * reached: at 1 GB/s and 256 KiB frames that is 300,000 years).
 */
import { createCipheriv, createDecipheriv, type DecipherGCM } from 'node:crypto';
import { SecondsiteError } from '../errors/errors.ts';
import { ALGORITHM, NONCE_BYTES, TAG_BYTES } from './crypto.ts';

export const FRAME_TYPE = Object.freeze({ data: 0, close: 1 });
export const MAX_FRAME_PLAINTEXT = 256 * 1024;
/** Largest length field a receiver accepts: type + the largest plaintext + tag. */
export const MAX_SEALED_FRAME = 1 + MAX_FRAME_PLAINTEXT + TAG_BYTES;
/** length (4) ‖ type (1): the associated data of every frame. */
const HEADER_BYTES = 5;

function nonceFor(counter: number): Buffer {
  const nonce = Buffer.alloc(NONCE_BYTES);
  nonce.writeUIntBE(counter, NONCE_BYTES - 6, 6);
  return nonce;
}

function header(length: number, type: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_BYTES);
  h.writeUInt32BE(length, 0);
  h.writeUInt8(type, 4);
  return h;
}

function protocolError(message: string): SecondsiteError {
  return new SecondsiteError('SS_PROTOCOL', message, { reason: 'channel' });
}

/** The sending half of one direction. */
export class FrameSealer {
  private counter = 0;
  private closed = false;

  constructor(private readonly key: Buffer) {}

  /**
   * Seals `data` (one buffer, or a batch written together) as DATA frames of up to
   * MAX_FRAME_PLAINTEXT each; returns the buffers to write, in order. Empty data: no frame.
   */
  data(data: Buffer | readonly Buffer[]): Buffer[] {
    const out: Buffer[] = [];
    let pieces: Buffer[] = [];
    let size = 0;
    for (const chunk of Buffer.isBuffer(data) ? [data] : data) {
      for (let at = 0; at < chunk.length;) {
        const n = Math.min(chunk.length - at, MAX_FRAME_PLAINTEXT - size);
        pieces.push(chunk.subarray(at, at + n));
        size += n;
        at += n;
        if (size === MAX_FRAME_PLAINTEXT) {
          this.frame(FRAME_TYPE.data, pieces, size, out);
          pieces = [];
          size = 0;
        }
      }
    }
    if (size > 0) this.frame(FRAME_TYPE.data, pieces, size, out);
    return out;
  }

  /** The CLOSE frame that ends this direction cleanly. */
  close(): Buffer[] {
    const out: Buffer[] = [];
    this.frame(FRAME_TYPE.close, [], 0, out);
    this.closed = true;
    return out;
  }

  /** Appends header ‖ ciphertext of each piece ‖ tag to `out`: one cipher, one frame. */
  private frame(type: number, pieces: Buffer[], size: number, out: Buffer[]): void {
    if (this.closed) throw protocolError('write after close');
    if (this.counter >= Number.MAX_SAFE_INTEGER) throw protocolError('frame counter exhausted');
    const h = header(1 + size + TAG_BYTES, type);
    const cipher = createCipheriv(ALGORITHM, this.key, nonceFor(this.counter++), {
      authTagLength: TAG_BYTES,
    });
    cipher.setAAD(h);
    out.push(h);
    for (const p of pieces) out.push(cipher.update(p));
    cipher.final();
    out.push(cipher.getAuthTag());
  }
}

/**
 * What the opener hands on: authentic plaintext, in order (one frame's plaintext may come as
 * several pieces, all released together once its tag has been checked), then the close.
 */
export type OpenedFrame = { type: 'data'; data: Buffer } | { type: 'close' };

/** The frame being received: its header, the decipher, its plaintext so far, its tag. */
interface Incoming {
  readonly type: number;
  readonly decipher: DecipherGCM;
  /** Ciphertext bytes still to come. */
  bodyLeft: number;
  readonly plain: Buffer[];
  readonly tag: Buffer;
  tagHave: number;
}

/** The receiving half of one direction. Throws SS_PROTOCOL on any altered frame. */
export class FrameOpener {
  private counter = 0;
  private ended = false;
  private readonly head = Buffer.alloc(HEADER_BYTES);
  private headHave = 0;
  private incoming: Incoming | undefined;

  constructor(private readonly key: Buffer) {}

  /**
   * Adds received bytes (split anywhere); returns the plaintext of every frame now complete
   * and authentic, in order. After a throw the opener is unusable (the connection closes).
   */
  push(chunk: Buffer): OpenedFrame[] {
    const out: OpenedFrame[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.ended) throw protocolError('data after the close frame');
      const f = this.incoming;
      if (!f) {
        const n = chunk.copy(this.head, this.headHave, at, at + HEADER_BYTES - this.headHave);
        this.headHave += n;
        at += n;
        if (this.headHave === HEADER_BYTES) this.incoming = this.begin();
      } else if (f.bodyLeft > 0) {
        const n = Math.min(f.bodyLeft, chunk.length - at);
        const plain = f.decipher.update(chunk.subarray(at, at + n));
        if (plain.length > 0) f.plain.push(plain);
        f.bodyLeft -= n;
        at += n;
      } else {
        const n = chunk.copy(f.tag, f.tagHave, at, at + TAG_BYTES - f.tagHave);
        f.tagHave += n;
        at += n;
        if (f.tagHave === TAG_BYTES) this.finish(f, out);
      }
    }
    return out;
  }

  /** Starts a frame from its complete header. */
  private begin(): Incoming {
    const length = this.head.readUInt32BE(0);
    if (length < 1 + TAG_BYTES || length > MAX_SEALED_FRAME) {
      throw protocolError('sealed frame of impossible length');
    }
    const decipher = createDecipheriv(ALGORITHM, this.key, nonceFor(this.counter), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(this.head);
    this.headHave = 0;
    return {
      type: this.head[4]!,
      decipher,
      bodyLeft: length - 1 - TAG_BYTES,
      plain: [],
      tag: Buffer.alloc(TAG_BYTES),
      tagHave: 0,
    };
  }

  /** Checks a complete frame's tag; only then are its type and plaintext believed. */
  private finish(f: Incoming, out: OpenedFrame[]): void {
    this.incoming = undefined;
    f.decipher.setAuthTag(f.tag);
    try {
      f.decipher.final();
    } catch {
      throw protocolError(`sealed frame ${this.counter} failed its integrity check`);
    }
    this.counter++;
    if (f.type === FRAME_TYPE.close) {
      if (f.plain.length !== 0) throw protocolError('close frame with data');
      this.ended = true;
      out.push({ type: 'close' });
    } else if (f.type === FRAME_TYPE.data) {
      for (const data of f.plain) out.push({ type: 'data', data });
    } else {
      throw protocolError(`unknown sealed frame type ${f.type}`);
    }
  }

  /** Whether the peer ended its direction with a CLOSE frame (else an EOF is a truncation). */
  get closedCleanly(): boolean {
    return this.ended;
  }
}
