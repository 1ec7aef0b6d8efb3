/**
 * The receiving side of a live segment (FEATURE_LIVE_SEGMENTS): chunks arrive in the primary's
 * write order while its journal still writes the segment, and may overwrite one another. They
 * are checked as they come (limits, shape, CRC) and held; the end brings the recovery point and
 * the digest, and only then does the segment leave here, coalesced (journal/coalesce.ts: the
 * last write wins at byte granularity), as the same IncomingSegment a sealed segment becomes.
 * Nothing is applied before that, so a break mid-segment leaves the replica untouched.
 *
 * Memory: overwritten bytes would otherwise stay held for the whole cycle, so once the held
 * bytes pass twice what survived the last compaction (and at least COMPACT_FLOOR), the held
 * changes are coalesced and their surviving bytes copied into fresh blocks (`compact`, run
 * by `addChunk` before it resolves): what is held stays within about twice the segment's
 * coalesced size.
 *
 * Failures: a chunk that breaks a limit or its shape throws SS_PROTOCOL (the stream closes); a
 * CRC or digest mismatch is remembered and `finish` throws SS_CHECKSUM_MISMATCH, which the
 * server answers with a REJECTED ack: the sender ships the segment again.
 */
import { isAllZero } from '../../../common/bytes/all-zero.ts';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { coalesce } from '../journal/coalesce.ts';
import type { Extent } from '../journal/types.ts';
import type { IncomingSegment } from '../recovery/segment-check.ts';
import { decodeSegmentChunk, safeInt } from './chunk-codec.ts';
import { pointFromWire } from './point-mapping.ts';
import { Feature, LIMITS, hasFeature, type Agreement } from './protocol.ts';
import { RangeSet } from './range-set.ts';
import { createSegmentDigest, type SegmentDigest } from './segment-digest.ts';
import type { ChunkMsg, SegmentEndMsg, SegmentStartMsg } from './wire-types.ts';

/** Held bytes below which no compaction runs. */
const COMPACT_FLOOR = 256 * 1024 * 1024;
/** Size of the blocks surviving bytes are compacted into. */
const BLOCK_BYTES = 64 * 1024 * 1024;
/** Bytes a compaction copies between two turns of the event loop. */
const COPY_SLICE = 16 * 1024 * 1024;

export class LiveSegmentAssembler {
  readonly header: { readonly vmId: string; readonly seq: number };
  /** For the replica's 'segment acked' debug line. */
  logFields(): Record<string, unknown> {
    return {
      live: true,
      receivedBytes: this.received,
      compactions: this.compactions,
      compactMs: Math.round(this.compactMs),
    };
  }
  private held: Extent[] = [];
  private heldBytes = 0;
  private compactAt: number;
  private received = 0;
  private readonly hash: SegmentDigest;
  private failure: SecondsiteError | undefined;
  private readonly touched = new RangeSet();
  /** How often the held bytes were compacted, and the ms it took (tests, the debug log). */
  compactions = 0;
  compactMs = 0;

  constructor(
    start: SegmentStartMsg,
    private readonly agreement: Agreement,
    private readonly limits = LIMITS,
    /** Held bytes below which no compaction runs (tests make it small). */
    private readonly compactFloor = COMPACT_FLOOR,
  ) {
    this.compactAt = compactFloor;
    const seq = safeInt(start.seq, 'seq');
    if (seq < 1) throw new SecondsiteError('SS_PROTOCOL', 'segment seq must be at least 1');
    if (!hasFeature(agreement, Feature.liveSegments)) {
      throw new SecondsiteError('SS_PROTOCOL', `segment ${seq} is live, which was not agreed`);
    }
    this.header = { vmId: start.vmId, seq };
    this.hash = createSegmentDigest(seq, agreement);
  }

  /**
   * Takes one chunk, compacting what is held when it is due. Resolves with the ranges the
   * chunk touched that no earlier chunk of the segment did (as extents without data, for undo
   * staging; none once the segment failed a check).
   */
  async addChunk(msg: ChunkMsg): Promise<readonly Extent[]> {
    const { seq } = this.header;
    this.received += msg.rawLength;
    if (this.received > this.limits.maxLiveSegmentBytes) {
      throw new SecondsiteError(
        'SS_PROTOCOL',
        `live segment ${seq} passed ${this.limits.maxLiveSegmentBytes} bytes`,
        { seq },
      );
    }
    if (this.failure) return [];
    const pieces = decodeSegmentChunk(msg, this.agreement);
    if (pieces instanceof SecondsiteError) {
      this.failure = pieces;
      this.held = [];
      this.heldBytes = 0;
      return [];
    }
    const fresh: Extent[] = [];
    this.hash.addChunk(pieces, msg.digest);
    for (const piece of pieces) {
      // Zeros found now rather than over the whole segment at its end, where the apply waits.
      const p = piece.data !== null && isAllZero(piece.data) ? { ...piece, data: null } : piece;
      this.held.push(p);
      if (p.data !== null) this.heldBytes += p.length;
      for (const [offset, length] of this.touched.addNew(p.disk, p.offset, p.length)) {
        fresh.push({ disk: p.disk, offset, length, data: null });
      }
    }
    if (this.heldBytes >= this.compactAt) await this.compact();
    return fresh;
  }

  /**
   * Coalesces what is held and copies the surviving bytes out of the chunks' memory, yielding
   * to the event loop every COPY_SLICE bytes: a compaction copies up to a cycle's coalesced
   * size (GBs at high churn), and a loop held that long misses the peer's keepalive pings
   * (measured: a 1.5 s compaction made the sender drop the connection and start the cycle's
   * segment over).
   */
  private async compact(): Promise<void> {
    const t0 = performance.now();
    const kept = coalesce(this.held, { detectZeros: false });
    const out: Extent[] = [];
    let block = Buffer.alloc(0);
    let at = 0;
    let bytes = 0;
    let sinceYield = 0;
    for (const e of kept) {
      if (e.data === null) {
        out.push(e);
        continue;
      }
      let done = 0;
      while (done < e.length) {
        if (at === block.length) {
          block = Buffer.allocUnsafe(BLOCK_BYTES);
          at = 0;
        }
        const n = Math.min(e.length - done, block.length - at);
        e.data.copy(block, at, done, done + n);
        out.push({
          disk: e.disk,
          offset: e.offset + done,
          length: n,
          data: block.subarray(at, at + n),
        });
        at += n;
        done += n;
        sinceYield += n;
      }
      bytes += e.length;
      if (sinceYield >= COPY_SLICE) {
        sinceYield = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    if (bytes > this.limits.maxSegmentBytes || out.length > this.limits.maxSegmentExtents) {
      throw new SecondsiteError(
        'SS_PROTOCOL',
        `live segment ${this.header.seq} holds ${bytes} bytes in ${out.length} extents; limits are ` +
          `${this.limits.maxSegmentBytes} bytes, ${this.limits.maxSegmentExtents} extents`,
        { seq: this.header.seq, bytes, extents: out.length },
      );
    }
    this.held = out;
    this.heldBytes = bytes;
    this.compactAt = Math.max(this.compactFloor, 2 * bytes);
    this.compactions++;
    this.compactMs += performance.now() - t0;
  }

  /** The verified, coalesced segment ending at the point the end carries. */
  finish(end: SegmentEndMsg): IncomingSegment {
    const { seq } = this.header;
    if (this.failure) throw this.failure;
    if (!this.hash.digest().equals(end.segmentDigest)) {
      throw new SecondsiteError('SS_CHECKSUM_MISMATCH', `segment ${seq} digest does not match`, {
        seq,
      });
    }
    const point = pointFromWire(end.point);
    // Zero pieces were found as they arrived; a partly overwritten one that became zeros is
    // written as data, which costs a little and changes nothing.
    const extents = coalesce(this.held, { detectZeros: false });
    if (extents.length > this.limits.maxSegmentExtents) {
      throw new SecondsiteError('SS_PROTOCOL', `live segment ${seq} has ${extents.length} extents`);
    }
    return { seq, point, extents };
  }
}
