/**
 * The sending side of a live segment (FEATURE_LIVE_SEGMENTS): the ShipFrames that carry a
 * segment while the journal still writes it. SegmentStart says `live` and carries no point or
 * totals; each batch of records read from the journal becomes chunks in write order (extents
 * may overlap earlier ones); the batch that carries the point ends the segment.
 *
 * The digest covers the extents in the order they travel, as for a sealed segment, so the
 * receiver checks exactly the bytes it was sent.
 */
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Extent, RecoveryPointRecord } from '../journal/types.ts';
import { pointToWire } from './point-mapping.ts';
import { Feature, hasFeature, type Agreement } from './protocol.ts';
import { ChunkEncoder, type SegmentFrameOptions } from './segment-frames.ts';
import type { ShipFrameMsg } from './wire-types.ts';

/** What the journal gave since the last batch; the last batch of a segment has its point. */
export interface LiveBatch {
  /** Changes in write order; `data === null` reads as zeros. */
  readonly extents: readonly Extent[];
  /** Set on the final batch: the segment's recovery point, durable on this host. */
  readonly point?: RecoveryPointRecord;
}

export async function* liveSegmentFrames(
  seg: { readonly vmId: string; readonly seq: number },
  batches: AsyncIterable<LiveBatch>,
  agreement: Agreement,
  opts: SegmentFrameOptions = {},
): AsyncGenerator<ShipFrameMsg, void, undefined> {
  if (!hasFeature(agreement, Feature.liveSegments)) {
    throw new SecondsiteError('SS_INTERNAL', 'live segments were not agreed with the peer');
  }
  yield {
    start: { vmId: seg.vmId, seq: seg.seq, point: null, extentCount: 0, totalBytes: 0, live: true },
  };
  const encoder = new ChunkEncoder(agreement, { seq: seg.seq }, opts);
  for await (const batch of batches) {
    for (const plan of encoder.plans(batch.extents)) yield { chunk: encoder.encode(plan) };
    if (batch.point) {
      if (batch.point.segment !== seg.seq) {
        throw new SecondsiteError(
          'SS_INTERNAL',
          `point of segment ${batch.point.segment} ends ${seg.seq}`,
        );
      }
      yield { end: { segmentDigest: encoder.digest(), point: pointToWire(batch.point) } };
      return;
    }
  }
  throw new SecondsiteError('SS_CANCELLED', `live segment ${seg.seq} ended without its point`, {
    seq: seg.seq,
  });
}
