/**
 * The InitialCopy and ResyncHashes streams on the wire (pure): hand-written mirrors of their
 * replication.proto messages as the runtime loader produces them (see wire-types.ts for the
 * conventions), the dispatch tables that say which frame may come in which state, and the size
 * checks every frame passes before its handler runs (STYLE.md rule 8).
 *
 * InitialCopy:   await-hello --hello--> await-start --start--> copying --chunk--> copying
 *                                                                 |--end--> done
 * ResyncHashes:  await-hello --hello--> await-start --start--> running --hashes|chunk|
 *                batch_end--> running --end--> done
 * Anything else ends the stream with SS_PROTOCOL.
 */
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Caller } from '../../common/caller.ts';
import type { RevocationCheck } from '../../common/revocation.ts';
import type { Clock } from '../../../common/time/clock.ts';
import { safeInt } from '../replication/chunk-codec.ts';
import type { ChunkMsg, HelloMsg, Long, WelcomeMsg } from '../replication/wire-types.ts';
import { MAX_CHUNK_BYTES, validChunkBytes, type GridCursor } from '../sync/chunk-grid.ts';
import type { HashAlgorithm } from '../sync/chunk-hash.ts';

export interface CopyStartMsg {
  vmId: string;
  copyId: string;
  diskSizes: Array<Long | number>;
  baseSeq: Long | number;
}

export interface CopyProgressMsg {
  disk: number;
  offset: Long | number;
  bytesDone: Long | number;
  bytesTotal: Long | number;
  done: boolean;
}

export type CopyStep = 'hello' | 'start' | 'chunk' | 'end';
export type CopyFrameMsg =
  | { step?: 'hello'; hello: HelloMsg }
  | { step?: 'start'; start: CopyStartMsg }
  | { step?: 'chunk'; chunk: ChunkMsg }
  | { step?: 'end'; end: { digest: Buffer } };
export type CopyReplyMsg =
  { step?: 'welcome'; welcome: WelcomeMsg } | { step?: 'progress'; progress: CopyProgressMsg };

export type HashAlgorithmName =
  'HASH_ALGORITHM_UNSPECIFIED' | 'HASH_ALGORITHM_BLAKE3' | 'HASH_ALGORITHM_SHA256';

export interface DiskCursorMsg {
  disk: number;
  offset: Long | number;
}

export interface ResyncStartMsg {
  vmId: string;
  resyncId: string;
  algorithm: HashAlgorithmName;
  chunkBytes: number;
}

export interface RangeHashesMsg {
  requestId: Long | number;
  disk: number;
  offset: Long | number;
  length: Long | number;
  hashes: Buffer[];
}

export interface RangeDiffMsg {
  requestId: Long | number;
  differ: Buffer;
  differingCount: number;
}

export type ResyncStep = 'hello' | 'start' | 'hashes' | 'chunk' | 'batchEnd' | 'end';
export type ResyncFrameMsg =
  | { step?: 'hello'; hello: HelloMsg }
  | { step?: 'start'; start: ResyncStartMsg }
  | { step?: 'hashes'; hashes: RangeHashesMsg }
  | { step?: 'chunk'; chunk: ChunkMsg }
  | { step?: 'batchEnd'; batchEnd: { cursor: DiskCursorMsg | null } }
  | { step?: 'end'; end: { baseSeq: Long | number } };
export type ResyncReplyMsg =
  | { step?: 'welcome'; welcome: WelcomeMsg }
  | { step?: 'diff'; diff: RangeDiffMsg }
  | { step?: 'resume'; resume: DiskCursorMsg }
  | { step?: 'batchDone'; batchDone: DiskCursorMsg }
  | { step?: 'done'; done: { expectedSeq: Long | number } };

export const COPY_STEPS: readonly CopyStep[] = ['hello', 'start', 'chunk', 'end'];
export const RESYNC_STEPS: readonly ResyncStep[] = [
  'hello',
  'start',
  'hashes',
  'chunk',
  'batchEnd',
  'end',
];

export type SyncState = 'await-hello' | 'await-start' | 'running' | 'done';

type Table<S extends string> = Readonly<Record<SyncState, Partial<Record<S, SyncState>>>>;

export const COPY_TRANSITIONS: Table<CopyStep> = Object.freeze({
  'await-hello': { hello: 'await-start' },
  'await-start': { start: 'running' },
  running: { chunk: 'running', end: 'done' },
  done: {},
});

export const RESYNC_TRANSITIONS: Table<ResyncStep> = Object.freeze({
  'await-hello': { hello: 'await-start' },
  'await-start': { start: 'running' },
  running: { hashes: 'running', chunk: 'running', batchEnd: 'running', end: 'done' },
  done: {},
});

/** The state after `step`, or SS_PROTOCOL naming what was expected. */
export function nextSyncState<S extends string>(
  table: Table<S>,
  state: SyncState,
  step: S | undefined,
): SyncState {
  const row = table[state];
  const next = step !== undefined && Object.hasOwn(row, step) ? row[step] : undefined;
  if (next === undefined) {
    const expected = Object.keys(row).join(' or ') || 'nothing';
    throw new SecondsiteError(
      'SS_PROTOCOL',
      `unexpected frame '${step ?? 'empty'}' in state ${state}; expected ${expected}`,
      { state, step: step ?? null },
    );
  }
  return next;
}

/** replication.proto RangeHashes: at most 16384 chunks per range; hashes are 32 bytes. */
export const MAX_RANGE_CHUNKS = 16_384;
export const HASH_BYTES = 32;
/**
 * Differing chunks of one resync batch are held in memory until batch_end makes them durable
 * together. The source sends 16 chunks of at most 4 MiB per batch (64 MiB); 256 MiB leaves room
 * for larger batches and still bounds what a peer can make us hold.
 */
export const MAX_BATCH_BYTES = 256 * 1024 * 1024;
/** Disks per VM a CopyStart may name: far above any VM, it bounds the watermark file. */
export const MAX_DISKS = 256;

function protocol(message: string, details: Record<string, unknown> = {}): SecondsiteError {
  return new SecondsiteError('SS_PROTOCOL', message, details);
}

/** A stream outlives the certificate it opened with: checked again as frames arrive. */
export function assertCallerCurrent(caller: Caller, clock: Clock, revoked?: RevocationCheck): void {
  revoked?.assertNotRevoked(caller);
  if (clock.now() > caller.certNotAfter) {
    throw new SecondsiteError('SS_CERT_INVALID', 'peer certificate has expired', {
      notAfter: new Date(caller.certNotAfter).toISOString(),
    });
  }
}

export function checkCopyStart(
  s: CopyStartMsg | undefined,
  vmId: string,
): {
  copyId: string;
  baseSeq: number;
  diskSizes: number[];
} {
  if (!s || s.vmId !== vmId) throw protocol(`copy of VM ${s?.vmId} on a ${vmId} stream`);
  if (!s.copyId || s.copyId.length > 128) throw protocol('copy id missing or over 128 bytes');
  if (s.diskSizes.length === 0 || s.diskSizes.length > MAX_DISKS) {
    throw protocol(`${s.diskSizes.length} disks; 1–${MAX_DISKS} allowed`);
  }
  return {
    copyId: s.copyId,
    baseSeq: safeInt(s.baseSeq, 'base_seq'),
    diskSizes: s.diskSizes.map((d, i) => safeInt(d, `disk_sizes[${i}]`)),
  };
}

const ALGORITHMS: Readonly<Record<string, HashAlgorithm>> = Object.freeze({
  HASH_ALGORITHM_BLAKE3: 'blake3',
  HASH_ALGORITHM_SHA256: 'sha256',
});

export function algorithmName(a: HashAlgorithm): HashAlgorithmName {
  return a === 'blake3' ? 'HASH_ALGORITHM_BLAKE3' : 'HASH_ALGORITHM_SHA256';
}

export function checkResyncStart(
  s: ResyncStartMsg | undefined,
  vmId: string,
  blake3Agreed: boolean,
): { id: string; algorithm: HashAlgorithm; chunkBytes: number } {
  if (!s || s.vmId !== vmId) throw protocol(`resync of VM ${s?.vmId} on a ${vmId} stream`);
  if (!s.resyncId || s.resyncId.length > 128) throw protocol('resync id missing or over 128 bytes');
  const algorithm = Object.hasOwn(ALGORITHMS, s.algorithm) ? ALGORITHMS[s.algorithm] : undefined;
  if (!algorithm || (algorithm === 'blake3' && !blake3Agreed)) {
    throw protocol(`hash algorithm ${s.algorithm} was not agreed`);
  }
  if (!validChunkBytes(s.chunkBytes)) {
    throw protocol(`chunk_bytes ${s.chunkBytes}: a power of two, 4 KiB–${MAX_CHUNK_BYTES}`);
  }
  return { id: s.resyncId, algorithm, chunkBytes: s.chunkBytes };
}

export interface RangeHashes {
  readonly requestId: number;
  readonly disk: number;
  readonly offset: number;
  readonly length: number;
  readonly hashes: readonly Buffer[];
}

/** Size checks of a RangeHashes; bounds against the disks are the resync target's. */
export function checkRangeHashes(h: RangeHashesMsg | undefined): RangeHashes {
  if (!h) throw protocol('empty hashes frame');
  if (h.hashes.length === 0 || h.hashes.length > MAX_RANGE_CHUNKS) {
    throw protocol(`${h.hashes.length} hashes in a range; 1–${MAX_RANGE_CHUNKS} allowed`);
  }
  if (h.hashes.some((x) => x.length !== HASH_BYTES)) throw protocol('a hash is not 32 bytes');
  return {
    requestId: safeInt(h.requestId, 'request_id'),
    disk: h.disk,
    offset: safeInt(h.offset, 'offset'),
    length: safeInt(h.length, 'length'),
    hashes: h.hashes,
  };
}

export function cursorFromWire(c: DiskCursorMsg | null | undefined, field: string): GridCursor {
  if (!c) throw protocol(`${field} missing`);
  return { disk: c.disk, offset: safeInt(c.offset, `${field}.offset`) };
}
