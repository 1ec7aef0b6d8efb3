/**
 * Hand-written mirrors of proto/secondsite/v1/replication.proto messages as the runtime loader
 * produces them (common/proto/load.ts: camelCase fields, 64-bit integers as decimal strings,
 * enums as their names, `step` naming the set oneof case). Sending sides may pass numbers
 * where strings are listed; receiving sides always get strings.
 */
export type Long = string;

export interface HelloMsg {
  protocolMin: number;
  protocolMax: number;
  featureFlags: number;
  vmId: string;
  epoch: Long | number;
}

export interface WelcomeMsg {
  protocolMin: number;
  protocolMax: number;
  featureFlags: number;
  protocol: number;
  features: number;
}

export interface ExtentMsg {
  disk: number;
  offset: Long | number;
  length: Long | number;
  zero: boolean;
}

export type CompressionName = 'COMPRESSION_UNSPECIFIED' | 'COMPRESSION_NONE' | 'COMPRESSION_ZSTD';

export interface ChunkMsg {
  extents: ExtentMsg[];
  payload: Buffer;
  compression: CompressionName;
  rawLength: number;
  crc32: number;
  /** BLAKE3 of the raw bytes with FEATURE_CHUNK_DIGEST (then crc32 is 0); else empty. */
  digest?: Buffer;
}

export type RecoveryPointTypeName =
  | 'RECOVERY_POINT_TYPE_UNSPECIFIED'
  | 'RECOVERY_POINT_TYPE_CRASH_CONSISTENT'
  | 'RECOVERY_POINT_TYPE_APP_CONSISTENT';

export interface RecoveryPointMsg {
  id: string;
  timeMs: Long | number;
  type: RecoveryPointTypeName;
  segment: Long | number;
  freezeFailed: string;
}

export interface SegmentStartMsg {
  vmId: string;
  seq: Long | number;
  point: RecoveryPointMsg | null;
  extentCount: Long | number;
  totalBytes: Long | number;
  /** FEATURE_LIVE_SEGMENTS: shipped while written; point and totals unset (see the proto). */
  live?: boolean;
}

export interface SegmentEndMsg {
  segmentDigest: Buffer;
  /** A live segment's recovery point (null or absent for a sealed one). */
  point?: RecoveryPointMsg | null;
}

/** A ShipFrame: exactly one of the step fields is set, and `step` names it. */
export type ShipFrameMsg =
  | { step?: 'hello'; hello: HelloMsg }
  | { step?: 'start'; start: SegmentStartMsg }
  | { step?: 'chunk'; chunk: ChunkMsg }
  | { step?: 'end'; end: SegmentEndMsg };

export type ShipStep = 'hello' | 'start' | 'chunk' | 'end';

export type AckOutcomeName =
  | 'ACK_OUTCOME_UNSPECIFIED'
  | 'ACK_OUTCOME_APPLIED'
  | 'ACK_OUTCOME_DUPLICATE'
  | 'ACK_OUTCOME_REJECTED';

export interface ErrorDetailMsg {
  code: string;
  message: string;
  detailsJson: string;
}

export interface AckMsg {
  seq: Long | number;
  outcome: AckOutcomeName;
  error: ErrorDetailMsg | null;
  expectedSeq: Long | number;
}

export type ShipReplyMsg =
  | { step?: 'welcome'; welcome: WelcomeMsg }
  | { step?: 'resume'; resume: { lastAppliedSeq: Long | number } }
  | { step?: 'ack'; ack: AckMsg };

export interface StatusRequestMsg {
  hello: HelloMsg | null;
}

export interface StatusReplyMsg {
  welcome: WelcomeMsg | null;
  lastAppliedSeq: Long | number;
  newestPointId: string;
}
