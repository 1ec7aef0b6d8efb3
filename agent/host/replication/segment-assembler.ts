/**
 * The receiving side of one segment: checks each chunk as it arrives, collects the extents,
 * and at SegmentEnd checks counts and the segment digest. Only a fully verified segment leaves
 * here (as the recovery store's IncomingSegment); nothing is applied before that.
 *
 * Two kinds of failure: a chunk that breaks limits or shape throws SS_PROTOCOL at once (the
 * stream closes: the peer is broken); a CRC or digest mismatch is remembered and reported by
 * `finish` as SS_CHECKSUM_MISMATCH, so the server answers with a REJECTED ack and the sender
 * resends the segment on the same stream.
 */
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Extent } from '../journal/types.ts';
import type { IncomingSegment } from '../recovery/segment-check.ts';
import { decodeSegmentChunk, safeInt } from './chunk-codec.ts';
import { pointFromWire } from './point-mapping.ts';
import { LIMITS, type Agreement } from './protocol.ts';
import { createSegmentDigest, type SegmentDigest } from './segment-digest.ts';
import type { ChunkMsg, SegmentEndMsg, SegmentStartMsg } from './wire-types.ts';

export interface SegmentHeaderFields {
  readonly vmId: string;
  readonly seq: number;
  readonly extentCount: number;
  readonly totalBytes: number;
}

export class SegmentAssembler {
  readonly header: SegmentHeaderFields;
  private readonly segment: Omit<IncomingSegment, 'extents'>;
  private readonly extents: Extent[] = [];
  private readonly hash: SegmentDigest;
  private bytes = 0;
  /** Extents counted, kept or not (after a failure nothing is kept). */
  private seen = 0;
  private failure: SecondsiteError | undefined;

  constructor(
    start: SegmentStartMsg,
    private readonly agreement: Agreement,
    limits = LIMITS,
  ) {
    const seq = safeInt(start.seq, 'seq');
    const extentCount = safeInt(start.extentCount, 'extent_count');
    const totalBytes = safeInt(start.totalBytes, 'total_bytes');
    if (seq < 1) throw new SecondsiteError('SS_PROTOCOL', 'segment seq must be at least 1');
    if (totalBytes > limits.maxSegmentBytes || extentCount > limits.maxSegmentExtents) {
      throw new SecondsiteError(
        'SS_PROTOCOL',
        `segment ${seq} claims ${totalBytes} bytes in ${extentCount} extents; limits are ` +
          `${limits.maxSegmentBytes} bytes, ${limits.maxSegmentExtents} extents`,
        { seq, totalBytes, extentCount },
      );
    }
    this.header = { vmId: start.vmId, seq, extentCount, totalBytes };
    this.segment = { seq, point: pointFromWire(start.point) };
    this.hash = createSegmentDigest(seq, agreement);
  }

  /**
   * Takes one chunk; throws SS_PROTOCOL for a frame the peer should never have sent. Returns
   * the extents it kept (none once the segment failed a check).
   */
  addChunk(msg: ChunkMsg): readonly Extent[] {
    const { seq, extentCount, totalBytes } = this.header;
    if (this.seen + msg.extents.length > extentCount) {
      throw new SecondsiteError(
        'SS_PROTOCOL',
        `segment ${seq} has more than ${extentCount} extents`,
      );
    }
    if (this.bytes + msg.rawLength > totalBytes) {
      throw new SecondsiteError('SS_PROTOCOL', `segment ${seq} has more than ${totalBytes} bytes`);
    }
    this.bytes += msg.rawLength;
    this.seen += msg.extents.length;
    if (this.failure) return []; // already refused: count the rest, keep nothing
    const pieces = decodeSegmentChunk(msg, this.agreement);
    if (pieces instanceof SecondsiteError) {
      this.failure = pieces;
      this.extents.length = 0;
      return [];
    }
    this.checkOrder(pieces);
    this.hash.addChunk(pieces, msg.digest);
    for (const p of pieces) this.extents.push(p);
    return pieces;
  }

  /** For the replica's 'segment acked' debug line (nothing beyond its timings). */
  logFields(): Record<string, unknown> {
    return {};
  }

  private checkOrder(pieces: readonly Extent[]): void {
    let prev = this.extents[this.extents.length - 1];
    for (const p of pieces) {
      if (
        prev &&
        (p.disk < prev.disk || (p.disk === prev.disk && p.offset < prev.offset + prev.length))
      ) {
        throw new SecondsiteError(
          'SS_PROTOCOL',
          `segment ${this.header.seq}: extents out of order or overlapping at disk ${p.disk} offset ${p.offset}`,
        );
      }
      prev = p;
    }
  }

  /**
   * The verified segment; SS_CHECKSUM_MISMATCH when a chunk or the digest failed, SS_PROTOCOL
   * when the chunks did not add up to what SegmentStart announced.
   */
  finish(end: SegmentEndMsg): IncomingSegment {
    const { seq, extentCount, totalBytes } = this.header;
    if (this.failure) throw this.failure;
    if (this.seen !== extentCount || this.bytes !== totalBytes) {
      throw new SecondsiteError(
        'SS_PROTOCOL',
        `segment ${seq} ended with ${this.seen}/${extentCount} extents, ` +
          `${this.bytes}/${totalBytes} bytes`,
      );
    }
    if (!this.hash.digest().equals(end.segmentDigest)) {
      throw new SecondsiteError('SS_CHECKSUM_MISMATCH', `segment ${seq} digest does not match`, {
        seq,
      });
    }
    return { ...this.segment, extents: this.extents };
  }
}
