/**
 * Framing for proto messages on a byte stream (unix sockets outside gRPC): each frame is a
 * 4-byte big-endian length followed by that many bytes. The reader keeps incoming chunks in a
 * list and copies only when a frame spans chunks, so small frames cost no growing buffer.
 */
import { SecondsiteError } from '../errors/errors.ts';

/** Prefixes `payload` with its length. */
export function frame(payload: Buffer): Buffer {
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE(payload.length, 0);
  return Buffer.concat([header, payload]);
}

export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** @param maxFrame frames longer than this are a protocol error (a peer gone wrong). */
  constructor(private readonly maxFrame: number) {}

  /**
   * Adds received bytes; returns every frame now complete, in order, or at most `maxFrames` of
   * them (the rest stays buffered: a handshake reads one frame, then `remaining()` hands the
   * bytes after it, unparsed, to whatever speaks next on the stream).
   */
  push(chunk: Buffer, maxFrames = Infinity): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.buffered < 4 || frames.length >= maxFrames) return frames;
      const length = this.peekLength();
      if (length > this.maxFrame) {
        throw new SecondsiteError(
          'SS_PROTOCOL',
          `frame of ${length} bytes exceeds ${this.maxFrame}`,
        );
      }
      if (this.buffered < 4 + length) return frames;
      this.take(4);
      frames.push(this.take(length));
    }
  }

  /** Takes every buffered byte not yet returned as a frame, as received (no copy). */
  remaining(): Buffer[] {
    const rest = this.chunks;
    this.chunks = [];
    this.buffered = 0;
    return rest;
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    return first.length >= 4 ? first.readUInt32BE(0) : this.take(4, true).readUInt32BE(0);
  }

  /** Removes (or with `peek` only copies) the first `n` buffered bytes. */
  private take(n: number, peek = false): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length >= n && !peek) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let done = 0;
    let i = 0;
    while (done < n) {
      const c = this.chunks[i++]!;
      done += c.copy(out, done, 0, Math.min(c.length, n - done));
    }
    if (!peek) this.drop(n);
    return out;
  }

  private drop(n: number): void {
    this.buffered -= n;
    while (n > 0) {
      const c = this.chunks[0]!;
      if (c.length <= n) {
        n -= c.length;
        this.chunks.shift();
      } else {
        this.chunks[0] = c.subarray(n);
        n = 0;
      }
    }
  }
}
