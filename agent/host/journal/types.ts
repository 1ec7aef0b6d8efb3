/**
 * The journal's public shapes: what the host agent, the shipping sender and the replica's
 * recovery store agree on. The binary segment format is defined in segment-format.ts.
 */
import type { BlockDevice } from '../nbd/block-device.ts';

export type RecoveryPointType = 'crash-consistent' | 'app-consistent';

/** A cut: one instant across all disks of a VM, sealing journal segment `segment`. */
export interface RecoveryPointRecord {
  /** Unique per VM; stable across restarts. */
  readonly id: string;
  /** Milliseconds since the epoch at the instant of the cut. */
  readonly time: number;
  readonly type: RecoveryPointType;
  /** Sequence number of the segment this cut sealed (segments are numbered from 1). */
  readonly segment: number;
  /** Set when an app-consistent cut was asked for but the guest did not freeze in time. */
  readonly freezeFailed?: string;
}

/**
 * One coalesced change: the final contents of a byte range of one disk within a segment.
 * `data === null` means the range reads as zeros (TRIM / WRITE_ZEROES, or all-zero data).
 * A coalesced segment is a list of extents sorted by (disk, offset) that never overlap.
 */
export interface Extent {
  readonly disk: number;
  readonly offset: number;
  readonly length: number;
  readonly data: Buffer | null;
}

/** A sealed segment waiting to be shipped. */
export interface SealedSegment {
  readonly seq: number;
  /** The sealed file (`.seg`). */
  readonly path: string;
  /**
   * Set while the seal is still finishing (shippableSegments): the file's name until it is
   * renamed to `path`. A reader tries it first and `path` when it is gone.
   */
  readonly openPath?: string;
  readonly bytes: number;
  readonly point: RecoveryPointRecord;
}

/** A segment still being written: read it through its own descriptor up to `written`. */
export interface LiveSegment {
  readonly seq: number;
  /** The file while it is open; an open descriptor survives the seal's rename. */
  readonly path: string;
  /** Bytes of the file holding whole records, at the time of the call. */
  readonly written: number;
}

/**
 * journaling: every write is journaled; resync-required: the unshipped journal passed its cap,
 * journaling stopped and changes are tracked in the persisted dirty bitmap instead.
 */
export type JournalState = 'journaling' | 'resync-required';

export interface VmJournal {
  readonly state: JournalState;
  /** The journaled view of disk `index`: serve this over NBD instead of the raw disk. */
  disk(index: number): BlockDevice;
  /**
   * Cuts a recovery point: writes in flight finish, new writes wait, the active segment is
   * sealed (its seal record fsynced together with the disks), a new segment opens, writes
   * resume. Resolves with the persisted record.
   */
  cut(opts: { type: RecoveryPointType; freezeFailed?: string }): Promise<RecoveryPointRecord>;
  /** Sealed, not yet shipped segments, oldest first. */
  sealedSegments(): SealedSegment[];
  /**
   * The same plus segments whose SEAL is durable but whose seal is still finishing (their
   * `openPath` set): what the sender may ship, oldest first.
   */
  shippableSegments(): SealedSegment[];
  /**
   * Segment `seq` while the journal still writes it (the active one, or one cut whose SEAL is
   * not yet durable), for shipping it live: its file and the bytes written so far (whole
   * records). Undefined once it is shippable, after an overflow dropped it, or when no such
   * segment is open. Optional: a journal without it ships only shippable segments.
   */
  liveSegment?(seq: number): LiveSegment | undefined;
  /** Bytes of journal not yet shipped (sealed + active). */
  unshippedBytes(): number;
  /** The peer has durably applied `seq`: delete it (and any older). Idempotent. */
  markShipped(seq: number): Promise<void>;
  /** Blocks changed since the journal overflowed, as disk → sorted list of [offset, length]. */
  dirtyRanges(): Map<number, Array<[number, number]>>;
  /** Flush, close segment and disks. */
  close(): Promise<void>;
}
