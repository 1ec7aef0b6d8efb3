/**
 * What an NBD export serves: a fixed-size byte array with the NBD command set. The plain raw
 * disk (agent/host/vm/raw-disk.ts) and the journaled disk (agent/host/journal/) both implement
 * it, so the NBD server knows nothing of journals.
 *
 * Contract for implementations:
 * - offsets and lengths are already bounds-checked by the caller (the NBD server refuses
 *   out-of-range requests with EINVAL before calling);
 * - a promise resolves only when the operation is complete in the sense NBD needs: with `fua`
 *   true, durable on stable storage; `flush()` makes every previously completed write durable;
 * - a rejection becomes an EIO error reply.
 */
export interface BlockDevice {
  /** Size in bytes; fixed while the device is open. */
  readonly size: number;
  /** Preferred I/O granularity in bytes (NBD_INFO_BLOCK_SIZE's preferred size). */
  readonly preferredBlockSize: number;
  /**
   * Reads into `into` (exactly `length` bytes) when given and the device can; returns the bytes
   * either way. Fresh memory is slow to touch, so bulk readers (resync) reuse their buffers.
   */
  read(offset: number, length: number, into?: Buffer): Promise<Buffer>;
  write(offset: number, data: Buffer, fua: boolean): Promise<void>;
  /** Discard: the range reads back as zeros afterwards (we always zero, never leave garbage). */
  trim(offset: number, length: number, fua: boolean): Promise<void>;
  writeZeroes(offset: number, length: number, fua: boolean): Promise<void>;
  flush(): Promise<void>;
  /** Flush and release. Further calls reject. */
  close(): Promise<void>;
}
