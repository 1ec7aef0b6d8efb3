/**
 * Shapes the initial-copy and resync engines share with their transport. The engines know no
 * gRPC: a later step carries these over replication.proto (InitialCopy, ResyncHashes,
 * ShipSegments); tests connect them with an in-process loopback.
 */
import type { Extent } from '../journal/types.ts';
import type { GridCursor } from './chunk-grid.ts';
import type { HashAlgorithm } from './chunk-hash.ts';

export type { Extent } from '../journal/types.ts';
export type { GridCursor } from './chunk-grid.ts';

/** Bytes done of bytes total (CopyProgress.bytes_done / bytes_total). */
export interface SyncProgress {
  readonly bytesDone: number;
  readonly bytesTotal: number;
}

/** What the source's resync engine needs from the replica side (one call per proto step). */
export interface ResyncPeer {
  /** ResyncStart: begins or resumes resync `id`; answers where the compare resumes. */
  begin(start: {
    id: string;
    algorithm: HashAlgorithm;
    chunkBytes: number;
  }): Promise<{ cursor: GridCursor }>;
  /** RangeHashes → RangeDiff: which chunks of the range differ on the replica. */
  diff(req: {
    disk: number;
    offset: number;
    length: number;
    hashes: readonly Uint8Array[];
  }): Promise<{ differ: Uint8Array; differingCount: number }>;
  /**
   * Differing chunks of one batch (possibly none), then the cursor past the batch; resolves
   * once the replica has them durably (their undo data first).
   */
  apply(extents: readonly Extent[], cursor: GridCursor): Promise<void>;
  /** The compare is complete: the replica expects segment `baseSeq + 1` next. */
  finish(baseSeq: number): Promise<void>;
}

export interface ResyncStats {
  readonly rule: string;
  readonly baseSeq: number;
  readonly bytesHashed: number;
  readonly chunksCompared: number;
  readonly chunksDiffering: number;
  /** Payload bytes sent (zero chunks travel as zero ranges and count 0). */
  readonly bytesSent: number;
}
