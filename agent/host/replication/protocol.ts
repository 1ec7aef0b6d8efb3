/**
 * The replication handshake (pure): versions, feature flags and the limits every frame is
 * checked against at the edge. Both sides run `negotiate` on the two Hellos and reach the same
 * answer, DRBD-style: the lower of the two maxima, and the AND of the flags.
 */
import { SecondsiteError } from '../../../common/errors/errors.ts';

/** Protocol versions this build speaks. Raise MAX when the wire changes compatibly. */
export const PROTOCOL_MIN = 1;
export const PROTOCOL_MAX = 1;

/** Bits of Hello.feature_flags (proto enum Feature). */
export const Feature = Object.freeze({
  zstd: 1,
  blake3: 2,
  zeroRanges: 4,
  /** Segments shipped while the journal writes them (live-frames.ts, live-assembler.ts). */
  liveSegments: 8,
  /** Chunks carry a BLAKE3 digest instead of a CRC-32 (segment-digest.ts says why). */
  chunkDigest: 16,
});

/** Everything this build supports. */
export const ALL_FEATURES =
  Feature.zstd | Feature.blake3 | Feature.zeroRanges | Feature.liveSegments | Feature.chunkDigest;

/**
 * Edge limits. A chunk's raw bytes are at most 4 MiB: large enough that per-message overhead
 * is noise at 1 GB/s (250 messages/s), small enough to keep two in flight per stream in memory.
 * 16384 extents × ~25 bytes each ≈ 400 KiB of extent list, so a whole Chunk message stays
 * under 4 MiB + 1 MiB = MAX_MESSAGE_BYTES, the gRPC receive limit.
 */
export const LIMITS = Object.freeze({
  maxChunkRawBytes: 4 * 1024 * 1024,
  maxChunkExtents: 16_384,
  maxMessageBytes: 5 * 1024 * 1024,
  /** A segment is held in memory until verified: one cycle of writes, at most this. */
  maxSegmentBytes: 2 * 1024 * 1024 * 1024,
  maxSegmentExtents: 4_000_000,
  /**
   * A live segment's bytes as received, overwrites included (the held bytes are compacted and
   * stay under maxSegmentBytes): a sanity bound on one cycle, far above any journal cap.
   */
  maxLiveSegmentBytes: 1024 * 1024 * 1024 * 1024,
});

export interface HelloFields {
  readonly protocolMin: number;
  readonly protocolMax: number;
  readonly featureFlags: number;
}

export interface Agreement {
  readonly protocol: number;
  readonly features: number;
}

export const LOCAL_HELLO: HelloFields = Object.freeze({
  protocolMin: PROTOCOL_MIN,
  protocolMax: PROTOCOL_MAX,
  featureFlags: ALL_FEATURES,
});

/** This build's Hello, without the features `off` names (a host's --live-segments off). */
export function localHello(off = 0): HelloFields {
  if (off === 0) return LOCAL_HELLO;
  return Object.freeze({ ...LOCAL_HELLO, featureFlags: (ALL_FEATURES & ~off) >>> 0 });
}

/** The reason two ranges cannot agree, or undefined when they can. */
function incompatibility(local: HelloFields, remote: HelloFields): string | undefined {
  for (const [who, h] of [
    ['local', local],
    ['peer', remote],
  ] as const) {
    if (!Number.isInteger(h.protocolMin) || h.protocolMin < 1 || h.protocolMax < h.protocolMin) {
      return `${who} protocol range ${h.protocolMin}..${h.protocolMax} is malformed`;
    }
  }
  const protocol = Math.min(local.protocolMax, remote.protocolMax);
  if (protocol < local.protocolMin || protocol < remote.protocolMin) {
    return (
      `no common protocol version: this host speaks ${local.protocolMin}..${local.protocolMax}, ` +
      `the peer ${remote.protocolMin}..${remote.protocolMax}`
    );
  }
  return undefined;
}

/** Agrees on version and features, or throws SS_PROTOCOL_INCOMPATIBLE (never retried). */
export function negotiate(local: HelloFields, remote: HelloFields): Agreement {
  const why = incompatibility(local, remote);
  if (why !== undefined) {
    throw new SecondsiteError('SS_PROTOCOL_INCOMPATIBLE', why, {
      local: `${local.protocolMin}..${local.protocolMax}`,
      peer: `${remote.protocolMin}..${remote.protocolMax}`,
    });
  }
  return Object.freeze({
    protocol: Math.min(local.protocolMax, remote.protocolMax),
    // `>>> 0` keeps the AND an unsigned 32-bit value, as the wire field is.
    features: (local.featureFlags & remote.featureFlags) >>> 0,
  });
}

export function hasFeature(agreement: Agreement, bit: number): boolean {
  return (agreement.features & bit) !== 0;
}
