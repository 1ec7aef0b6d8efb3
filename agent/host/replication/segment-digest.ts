/**
 * The per-segment (and per-copy) digest of SegmentEnd / CopyEnd: BLAKE3 when both sides agreed
 * on FEATURE_BLAKE3 (5.5 GB/s here, vs 1.2 GB/s for SHA-256), else SHA-256. It covers the
 * segment's seq and every extent's position and bytes, so a reordered, dropped or moved extent
 * changes it even when each chunk's CRC holds.
 */
import { createHash } from 'node:crypto';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import type { Extent } from '../journal/types.ts';

export interface SegmentDigest {
  add(e: Extent): void;
  digest(): Buffer;
}

/** disk u32 + offset u64 + length u64 + zero u8, little-endian. */
const HEADER_BYTES = 21;

export function createSegmentDigest(seq: number, blake3: boolean): SegmentDigest {
  const b3 = blake3 ? new Blake3Hasher() : undefined;
  const sha = blake3 ? undefined : createHash('sha256');
  const update = (b: Buffer): void => {
    if (b3) b3.update(b);
    else sha?.update(b);
  };
  const head = Buffer.alloc(HEADER_BYTES);
  const seqBytes = Buffer.alloc(8);
  seqBytes.writeBigUInt64LE(BigInt(seq));
  update(seqBytes);
  return {
    add(e: Extent): void {
      head.writeUInt32LE(e.disk, 0);
      head.writeBigUInt64LE(BigInt(e.offset), 4);
      head.writeBigUInt64LE(BigInt(e.length), 12);
      head.writeUInt8(e.data === null ? 1 : 0, 20);
      update(head);
      if (e.data !== null) update(e.data);
    },
    digest(): Buffer {
      return b3 ? b3.digestBuffer() : (sha?.digest() ?? Buffer.alloc(0));
    },
  };
}
