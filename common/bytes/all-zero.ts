/**
 * Whether a buffer is all zero: memcmp against a shared zero buffer, in slices of at most
 * 1 MiB so the shared buffer stays small (measured here: tens of GB/s on zeros, and random
 * data stops at its first differing byte). A per-byte `every()` in JS ran at ~0.2 GB/s and
 * dominated a pairing's zero check of a 1 GiB disk.
 */
const SLICE = 1024 * 1024;
const ZEROS = Buffer.alloc(SLICE);

export function isAllZero(b: Uint8Array): boolean {
  for (let at = 0; at < b.length; at += SLICE) {
    const n = Math.min(SLICE, b.length - at);
    if (ZEROS.compare(b, at, at + n, 0, n) !== 0) return false;
  }
  return true;
}
