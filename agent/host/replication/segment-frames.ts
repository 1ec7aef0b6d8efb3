/**
 * The sending side of one segment: the ShipFrames that carry it (start, chunks, end). Chunks
 * are encoded lazily as the stream asks for them, so compression runs in step with the
 * network and at most one encoded chunk per stream waits in memory beyond gRPC's buffers.
 */
import type { Extent, RecoveryPointRecord } from '../journal/types.ts';
import { encodeChunk } from './chunk-codec.ts';
import { planChunks, type ChunkPlan, type PlanOptions } from './chunk-plan.ts';
import { pointToWire } from './point-mapping.ts';
import { Feature, LIMITS, hasFeature, type Agreement } from './protocol.ts';
import { createSegmentDigest, type SegmentDigest } from './segment-digest.ts';
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
  /** Tests only: changes an encoded chunk after its check value was computed (corruption). */
  readonly tamperChunk?: (chunk: ChunkMsg, index: number) => void;
}

/**
 * Turns a stream's extents into chunk messages: planned to the chunk size, each extent added
 * to the stream's digest in the order it travels, zstd when the policy asks and the peer
 * agreed. One per stream: sealed segments, live segments and initial copies all send this way.
 */
export class ChunkEncoder {
  private readonly plan: PlanOptions;
  private readonly zstd: boolean;
  private readonly chunkDigest: boolean;
  private readonly hash: SegmentDigest | undefined;
  private index = 0;

  constructor(
    agreement: Agreement,
    /** The stream's digest, or undefined when it carries none (a resumed initial copy). */
    digest: { readonly seq: number } | undefined,
    private readonly opts: SegmentFrameOptions = {},
  ) {
    this.plan = {
      maxRawBytes: Math.min(opts.chunkBytes ?? DEFAULT_CHUNK_BYTES, LIMITS.maxChunkRawBytes),
      maxExtents: LIMITS.maxChunkExtents,
      zeroRanges: hasFeature(agreement, Feature.zeroRanges),
    };
    this.zstd = (opts.compress ?? false) && hasFeature(agreement, Feature.zstd);
    this.chunkDigest = hasFeature(agreement, Feature.chunkDigest);
    this.hash = digest && createSegmentDigest(digest.seq, agreement);
  }

  /** Chunk-sized pieces of `extents` (slices, no copies). */
  plans(extents: Iterable<Extent>): Generator<ChunkPlan, void, undefined> {
    return planChunks(extents, this.plan);
  }

  /** The chunk message of one planned piece; its extents join the digest. */
  encode(plan: ChunkPlan): ChunkMsg {
    const chunk = encodeChunk(plan, { zstd: this.zstd, digest: this.chunkDigest });
    this.hash?.addChunk(plan.extents, chunk.digest);
    this.opts.tamperChunk?.(chunk, this.index++);
    return chunk;
  }

  /** The digest of everything encoded so far (empty when the stream carries none). */
  digest(): Buffer {
    return this.hash?.digest() ?? Buffer.alloc(0);
  }
}

export function* segmentFrames(
  seg: OutgoingSegment,
  agreement: Agreement,
  opts: SegmentFrameOptions = {},
): Generator<ShipFrameMsg, void, undefined> {
  // Planning only slices (no copies), so the whole plan is made first: SegmentStart must
  // announce the extent and byte totals the receiver will hold the chunks to.
  const encoder = new ChunkEncoder(agreement, { seq: seg.seq }, opts);
  const plans = [...encoder.plans(seg.extents)];
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
  for (const plan of plans) yield { chunk: encoder.encode(plan) };
  yield { end: { segmentDigest: encoder.digest() } };
}
