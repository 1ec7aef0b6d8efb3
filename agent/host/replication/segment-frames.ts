/**
 * The sending side of one segment: the ShipFrames that carry it (start, chunks, end). Chunks
 * are encoded lazily as the stream asks for them, so compression runs in step with the
 * network and at most one encoded chunk per stream waits in memory beyond gRPC's buffers.
 */
import type { Extent, RecoveryPointRecord } from '../journal/types.ts';
import { encodeChunk } from './chunk-codec.ts';
import { planChunks } from './chunk-plan.ts';
import { pointToWire } from './point-mapping.ts';
import { Feature, LIMITS, hasFeature, type Agreement } from './protocol.ts';
import { createSegmentDigest } from './segment-digest.ts';
import type { ChunkMsg, ShipFrameMsg } from './wire-types.ts';

/** A sealed, coalesced segment as the sender ships it (journal's readCoalescedSegment). */
export interface OutgoingSegment {
  readonly vmId: string;
  readonly seq: number;
  readonly point: RecoveryPointRecord;
  /** Sorted by (disk, offset), not overlapping; `data === null` reads as zeros. */
  readonly extents: readonly Extent[];
}

/**
 * Raw bytes per chunk the sender aims for. The receiver accepts up to LIMITS.maxChunkRawBytes
 * (4 MiB); 1 MiB measured as fast or faster here (bench/grpc-throughput.ts) and halves the
 * memory a stream holds in flight.
 */
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;

export interface SegmentFrameOptions {
  /** Raw bytes per chunk, at most LIMITS.maxChunkRawBytes. @default DEFAULT_CHUNK_BYTES */
  readonly chunkBytes?: number;
  /** The policy asks for compression; used only when FEATURE_ZSTD was agreed. @default false */
  readonly compress?: boolean;
  /** Tests only: changes an encoded chunk after its CRC was computed (to fake corruption). */
  readonly tamperChunk?: (chunk: ChunkMsg, index: number) => void;
}

export function* segmentFrames(
  seg: OutgoingSegment,
  agreement: Agreement,
  opts: SegmentFrameOptions = {},
): Generator<ShipFrameMsg, void, undefined> {
  // Planning only slices (no copies), so the whole plan is made first: SegmentStart must
  // announce the extent and byte totals the receiver will hold the chunks to.
  const plans = [
    ...planChunks(seg.extents, {
      maxRawBytes: Math.min(opts.chunkBytes ?? DEFAULT_CHUNK_BYTES, LIMITS.maxChunkRawBytes),
      maxExtents: LIMITS.maxChunkExtents,
      zeroRanges: hasFeature(agreement, Feature.zeroRanges),
    }),
  ];
  let extentCount = 0;
  let totalBytes = 0;
  for (const p of plans) {
    extentCount += p.extents.length;
    totalBytes += p.rawLength;
  }
  yield {
    start: {
      vmId: seg.vmId,
      seq: seg.seq,
      point: pointToWire(seg.point),
      extentCount,
      totalBytes,
    },
  };
  const zstd = (opts.compress ?? false) && hasFeature(agreement, Feature.zstd);
  const digest = createSegmentDigest(seg.seq, hasFeature(agreement, Feature.blake3));
  for (const [i, plan] of plans.entries()) {
    for (const e of plan.extents) digest.add(e);
    const chunk = encodeChunk(plan, { zstd });
    opts.tamperChunk?.(chunk, i);
    yield { chunk };
  }
  yield { end: { segmentDigest: digest.digest() } };
}
