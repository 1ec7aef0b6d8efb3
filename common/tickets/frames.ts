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
 * Limits: at most 256 KiB of plaintext per frame (grpc-js writes HTTP/2 frames of up to 1 MiB,
 * which become 4 sealed frames; the per-frame cost, 17 bytes and one cipher set-up, is noise at
 * that size). 2^53 frames per direction before the counter refuses (never reached: at 1 GB/s
 * and 256 KiB frames that is 300,000 years).
 */
import { SecondsiteError } from '../errors/errors.ts';
import { FrameReader } from '../wire/length-prefixed.ts';
import { NONCE_BYTES, TAG_BYTES, openWithNonce, sealWithNonce } from './crypto.ts';

export const FRAME_TYPE = Object.freeze({ data: 0, close: 1 });
export const MAX_FRAME_PLAINTEXT = 256 * 1024;
/** Largest length field a receiver accepts: type + the largest plaintext + tag. */
export const MAX_SEALED_FRAME = 1 + MAX_FRAME_PLAINTEXT + TAG_BYTES;

function nonceFor(counter: number): Buffer {
  const nonce = Buffer.alloc(NONCE_BYTES);
  nonce.writeUIntBE(counter, NONCE_BYTES - 6, 6);
  return nonce;
}

function header(length: number, type: number): Buffer {
  const h = Buffer.allocUnsafe(5);
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

  /** Seals `data` as one or more DATA frames; returns the buffers to write, in order. */
  data(data: Buffer): Buffer[] {
    const out: Buffer[] = [];
    for (let at = 0; at < data.length; at += MAX_FRAME_PLAINTEXT) {
      out.push(...this.frame(FRAME_TYPE.data, data.subarray(at, at + MAX_FRAME_PLAINTEXT)));
    }
    return out;
  }

  /** The CLOSE frame that ends this direction cleanly. */
  close(): Buffer[] {
    const out = this.frame(FRAME_TYPE.close, Buffer.alloc(0));
    this.closed = true;
    return out;
  }

  private frame(type: number, plain: Buffer): Buffer[] {
    if (this.closed) throw protocolError('write after close');
    if (this.counter >= Number.MAX_SAFE_INTEGER) throw protocolError('frame counter exhausted');
    const h = header(1 + plain.length + TAG_BYTES, type);
    const { body, tag } = sealWithNonce(this.key, nonceFor(this.counter++), plain, h);
    return [h, body, tag];
  }
}

export type OpenedFrame = { type: 'data'; data: Buffer } | { type: 'close' };

/** The receiving half of one direction. Throws SS_PROTOCOL on any altered frame. */
export class FrameOpener {
  private counter = 0;
  private ended = false;
  private readonly reader: FrameReader;

  constructor(
    private readonly key: Buffer,
    reader?: FrameReader,
  ) {
    this.reader = reader ?? new FrameReader(MAX_SEALED_FRAME);
  }

  /** Adds received bytes; returns every frame now complete and authentic, in order. */
  push(chunk: Buffer): OpenedFrame[] {
    return this.openAll(this.reader.push(chunk));
  }

  /** Opens frames a handshake reader already split off (bytes that followed the handshake). */
  openAll(frames: Buffer[]): OpenedFrame[] {
    const out: OpenedFrame[] = [];
    for (const f of frames) {
      if (this.ended) throw protocolError('data after the close frame');
      if (f.length < 1 + TAG_BYTES || f.length > MAX_SEALED_FRAME) {
        throw protocolError('sealed frame of impossible length');
      }
      const type = f[0]!;
      const aad = header(f.length, type);
      const plain = openWithNonce(
        this.key,
        nonceFor(this.counter),
        f.subarray(1, f.length - TAG_BYTES),
        f.subarray(f.length - TAG_BYTES),
        aad,
      );
      if (!plain) throw protocolError(`sealed frame ${this.counter} failed its integrity check`);
      this.counter++;
      if (type === FRAME_TYPE.close) {
        if (plain.length !== 0) throw protocolError('close frame with data');
        this.ended = true;
        out.push({ type: 'close' });
      } else if (type === FRAME_TYPE.data) {
        out.push({ type: 'data', data: plain });
      } else {
        throw protocolError(`unknown sealed frame type ${type}`);
      }
    }
    return out;
  }

  /** Whether the peer ended its direction with a CLOSE frame (else an EOF is a truncation). */
  get closedCleanly(): boolean {
    return this.ended;
  }
}
