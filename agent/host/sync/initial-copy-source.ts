/**
 * Initial replication, source side (R15): the VM's disks read through its journal, chunk by
 * chunk, all-zero chunks as zero ranges (data null).
 *
 * The protocol, and why the replica ends bit-exact:
 *   1. The VM is protected first: its journal is open and journaling, so every write from now
 *      on is in a segment.
 *   2. A point is cut: its segment seq is the copy's baseSeq. Every write before the cut is in
 *      segments <= baseSeq and visible through journal.disk(i); those segments are never
 *      shipped (the wiring calls journal.markShipped(baseSeq) once the copy is done).
 *   3. The disks are read, each chunk at some instant after the cut. A chunk may or may not
 *      hold a write made after the cut, but every such write is also in a segment > baseSeq.
 *   4. The target rebases its store to baseSeq and applies segments baseSeq + 1, … in order:
 *      each block's last write wins, so after segment S the replica equals the source at S.
 * Resuming (the target's watermark, initial-copy-target.ts) keeps baseSeq: chunks already
 * durable are as good as before, provided the journal kept every segment after baseSeq (it did
 * while it is still journaling; after an overflow the decision table asks for a hash compare).
 */
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { isAllZero } from '../../../common/bytes/all-zero.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { VmJournal } from '../journal/types.ts';
import {
  bytesBefore,
  rangesFrom,
  totalBytes,
  validChunkBytes,
  wholeDisks,
  type GridCursor,
} from './chunk-grid.ts';
import type { Extent, SyncProgress } from './types.ts';

/**
 * Bytes per chunk of an initial copy: read, checked for zeros and sent as one chunk message.
 * Measured with `npm run bench -- initial-copy` (2 GiB, loopback, mTLS): 4 MiB 0.27 GB/s,
 * 1 MiB 0.37–0.41, 512 KiB 0.89, 256 KiB 0.79, 64 KiB 0.55. Larger messages left the sender
 * waiting on HTTP/2 flow control most of the time while the replica sat idle; smaller ones
 * cost per-message work.
 */
export const COPY_CHUNK_BYTES = 512 * 1024;

export interface InitialCopySourceOptions {
  readonly journal: Pick<VmJournal, 'disk' | 'cut' | 'state'>;
  readonly diskSizes: readonly number[];
  /** @default 1 MiB */
  readonly chunkBytes?: number;
  /** Resuming: the interrupted copy's base (from the target's watermark). */
  readonly baseSeq?: number;
  /** Resuming: where the target's durable watermark is. @default the start */
  readonly from?: GridCursor;
  readonly log: Logger;
}

export interface InitialCopySource {
  /** Segments after this seq must be applied on top of the copy. */
  readonly baseSeq: number;
  progress(): SyncProgress;
  /**
   * The chunks from `from` onwards, in (disk, offset) order. A chunk's data stays valid after
   * the next one is read: it is fresh memory, or with `buffers` memory taken from them that
   * the caller gives back once nothing views it any more (the copy otherwise allocates fresh
   * memory per chunk, and the collections that forces took a third of the source's time).
   */
  chunks(buffers?: ChunkBuffers): AsyncGenerator<Extent>;
}

export async function initialCopySource(o: InitialCopySourceOptions): Promise<InitialCopySource> {
  const chunkBytes = o.chunkBytes ?? COPY_CHUNK_BYTES;
  if (!validChunkBytes(chunkBytes)) {
    throw new SecondsiteError(
      'SS_BAD_INPUT',
      `chunkBytes ${chunkBytes}: a power of two, 4 KiB–4 MiB`,
    );
  }
  if (o.journal.state !== 'journaling') {
    throw new SecondsiteError('SS_RESYNC_REQUIRED', 'the journal is not journaling: no copy', {});
  }
  const baseSeq = o.baseSeq ?? (await o.journal.cut({ type: 'crash-consistent' })).segment;
  const all = wholeDisks(o.diskSizes);
  const total = totalBytes(all);
  let cursor: GridCursor = o.from ?? { disk: 0, offset: 0 };
  o.log.info(
    { baseSeq, from: cursor, bytesTotal: total, chunkBytes },
    'initial copy: source begins',
  );
  return {
    baseSeq,
    progress: () => ({ bytesDone: bytesBefore(all, cursor), bytesTotal: total }),
    async *chunks(buffers?: ChunkBuffers) {
      for (const r of rangesFrom(all, cursor)) {
        const disk = o.journal.disk(r.disk);
        for (let at = r.offset; at < r.offset + r.length; at += chunkBytes) {
          // Overflowed mid-copy: segments after the base are gone, finishing cannot be exact.
          if (o.journal.state !== 'journaling') {
            throw new SecondsiteError(
              'SS_RESYNC_REQUIRED',
              'the journal overflowed during the copy',
              {
                baseSeq,
              },
            );
          }
          const length = Math.min(chunkBytes, r.offset + r.length - at);
          const into = buffers?.take(length);
          const data = await disk.read(at, length, into);
          cursor = { disk: r.disk, offset: at + length };
          const zero = isAllZero(data);
          if (zero && into) buffers?.give(data);
          yield { disk: r.disk, offset: at, length, data: zero ? null : data };
        }
      }
    },
  };
}

/**
 * Chunk-sized buffers handed out for reads and given back once nothing refers to them any
 * more (their frame was serialized: initial-copy-client.ts). At most `keep` are kept.
 */
export class ChunkBuffers {
  private readonly free: Buffer[] = [];
  /** The buffers handed out, by their memory, so a view of one gives it back. */
  private readonly out = new Map<ArrayBufferLike, Buffer>();

  constructor(private readonly keep = 32) {}

  /** A buffer of `length` bytes to read into. */
  take(length: number): Buffer {
    let b = this.free.pop();
    if (!b || b.length < length) b = Buffer.allocUnsafeSlow(length);
    this.out.set(b.buffer, b);
    return b.subarray(0, length);
  }

  /** Gives back the buffer `view` lies in; views of other memory are ignored. */
  give(view: Buffer): void {
    const b = this.out.get(view.buffer);
    if (!b) return;
    this.out.delete(view.buffer);
    if (this.free.length < this.keep) this.free.push(b);
  }
}
