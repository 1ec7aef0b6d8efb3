/**
 * The client side of InitialCopy: copies a VM's disks from an InitialCopySource
 * (agent/host/sync/initial-copy-source.ts) to the peer's replica, resuming where an earlier
 * attempt with the same copy id and base left off.
 *
 * Flow (replication.proto InitialCopy):
 *  1–2. Hello → Welcome.
 *  3.   CopyStart { copyId, baseSeq, diskSizes }. A new copy has no base yet: the source is
 *       made first (it cuts the base point), then started at 0/0. A resumed copy passes the
 *       base of the interrupted attempt (the source host keeps { copyId, baseSeq }).
 *  4.   The first CopyProgress says where to begin; the source is (re)made from there.
 *  5.   Chunks in (disk, offset) order, several source chunks per message (zero ranges cost
 *       no bytes), each CRC-32'd and zstd-compressed when asked and agreed.
 *  6.   CopyProgress after each replica flush: reported to onProgress (bytes durable / total).
 *  7–8. CopyEnd with the digest (only when this attempt began at 0/0, so it covers the whole
 *       copy) → CopyProgress { done }. The replica then expects segment baseSeq + 1: the
 *       caller marks segments <= baseSeq shipped and ships the rest on ShipSegments.
 */
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Extent } from '../journal/types.ts';
import { safeInt } from '../replication/chunk-codec.ts';
import { LIMITS, type HelloFields } from '../replication/protocol.ts';
import { ChunkEncoder } from '../replication/segment-frames.ts';
import type { GridCursor } from '../sync/chunk-grid.ts';
import {
  COPY_CHUNK_BYTES,
  ChunkBuffers,
  type InitialCopySource,
} from '../sync/initial-copy-source.ts';
import type { SyncProgress } from '../sync/types.ts';
import { SyncCall } from './sync-call.ts';
import type { CopyFrameMsg, CopyProgressMsg, CopyReplyMsg } from './sync-wire.ts';

export interface InitialCopyOptions {
  readonly vmId: string;
  readonly epoch: number;
  /** Names the copy; the same id (and base) resumes an interrupted attempt. */
  readonly copyId: string;
  readonly diskSizes: readonly number[];
  /** The base of the attempt being resumed; undefined: a new copy (the source cuts one). */
  readonly baseSeq?: number;
  /**
   * Makes the source at `from`, e.g. `(at) => initialCopySource({ journal, diskSizes,
   * baseSeq: at.baseSeq, from: at.from, log })`.
   */
  source(at: { baseSeq?: number; from: GridCursor }): Promise<InitialCopySource>;
  /** Durable progress on the replica (bytes done / total). */
  readonly onProgress?: (p: SyncProgress) => void;
  /** zstd level 1 per chunk (the policy's choice; used when FEATURE_ZSTD was agreed). */
  readonly compress?: boolean;
  /** Aborting cancels the stream; the next attempt resumes at the replica's watermark. */
  readonly signal?: AbortSignal;
  /** Waits for the host's bandwidth cap before each chunk. */
  readonly pace?: (bytes: number) => Promise<void>;
}

export interface InitialCopyResult {
  readonly baseSeq: number;
  /** Where this attempt began (0/0 unless it resumed). */
  readonly from: GridCursor;
  /** Payload bytes of the chunk messages (after compression). */
  readonly payloadBytes: number;
  /** Raw bytes of data extents sent, and bytes sent as zero ranges. */
  readonly dataBytes: number;
  readonly zeroBytes: number;
}

type Call = ClientDuplexStream<CopyFrameMsg, CopyReplyMsg>;

function progressOf(p: CopyProgressMsg): SyncProgress {
  return {
    bytesDone: safeInt(p.bytesDone, 'bytes_done'),
    bytesTotal: safeInt(p.bytesTotal, 'bytes_total'),
  };
}

/** Groups source chunks into chunk messages of COPY_CHUNK_BYTES raw bytes or so. */
class ChunkBatcher {
  private pending: Extent[] = [];
  private raw = 0;
  payloadBytes = 0;
  dataBytes = 0;
  zeroBytes = 0;

  constructor(private readonly encoder: ChunkEncoder) {}

  add(e: Extent): boolean {
    this.pending.push(e);
    if (e.data === null) this.zeroBytes += e.length;
    else this.raw += e.length;
    return this.raw >= COPY_CHUNK_BYTES || this.pending.length >= LIMITS.maxChunkExtents;
  }

  /** The pending chunks' frames, each with the data buffers it views (free once written). */
  *take(): Generator<{ frame: CopyFrameMsg; data: Buffer[] }> {
    const plans = this.encoder.plans(this.pending);
    this.pending = [];
    this.raw = 0;
    for (const plan of plans) {
      const chunk = this.encoder.encode(plan);
      this.payloadBytes += chunk.payload.length;
      this.dataBytes += chunk.rawLength;
      const data = plan.extents.flatMap((e) => (e.data ? [e.data] : []));
      yield { frame: { chunk }, data };
    }
  }
}

async function beginCopy(
  sc: SyncCall<CopyFrameMsg, CopyReplyMsg>,
  o: InitialCopyOptions,
): Promise<{ source: InitialCopySource; from: GridCursor; baseSeq: number }> {
  let source =
    o.baseSeq === undefined ? await o.source({ from: { disk: 0, offset: 0 } }) : undefined;
  const baseSeq = o.baseSeq ?? source!.baseSeq;
  const first = sc.expect('progress');
  await sc.write({
    start: { vmId: o.vmId, copyId: o.copyId, diskSizes: [...o.diskSizes], baseSeq },
  });
  const reply = await first;
  const p = 'progress' in reply ? reply.progress : undefined;
  if (!p) throw new SecondsiteError('SS_PROTOCOL', 'copy start answered without progress');
  const from = { disk: p.disk, offset: safeInt(p.offset, 'offset') };
  o.onProgress?.(progressOf(p));
  if (!source || from.disk !== 0 || from.offset !== 0) {
    source = await o.source({ baseSeq, from });
  }
  if (source.baseSeq !== baseSeq) {
    throw new SecondsiteError(
      'SS_CONFLICT',
      `the source's base ${source.baseSeq} is not ${baseSeq}`,
    );
  }
  return { source, from, baseSeq };
}

/** Runs one attempt of the copy over a fresh InitialCopy call (see the file comment). */
export async function runInitialCopy(
  call: Call,
  local: HelloFields,
  peerName: string,
  o: InitialCopyOptions,
): Promise<InitialCopyResult> {
  let done: ((p: SyncProgress) => void) | undefined;
  let started = false;
  const finished = new Promise<SyncProgress>((r) => (done = r));
  const sc = new SyncCall<CopyFrameMsg, CopyReplyMsg>(call, peerName, (r) => {
    // Step 6 and 8 arrive on their own once the copy runs.
    if (!('progress' in r) || !r.progress || !started) return false;
    const p = progressOf(r.progress);
    o.onProgress?.(p);
    if (r.progress.done) done?.(p);
    return true;
  });
  sc.pace = o.pace;
  const abort = (): void => sc.cancel('initial copy cancelled');
  o.signal?.addEventListener('abort', abort, { once: true });
  try {
    if (o.signal?.aborted) throw new SecondsiteError('SS_CANCELLED', 'initial copy cancelled');
    const agreement = await sc.handshake(
      local,
      o,
      (hello) => ({ hello }) as CopyFrameMsg,
      (r) => ('welcome' in r ? r.welcome : undefined),
    );
    const { source, from, baseSeq } = await beginCopy(sc, o);
    started = true;
    const whole = from.disk === 0 && from.offset === 0;
    // The digest covers a whole copy only: an attempt that resumed sends none.
    const encoder = new ChunkEncoder(agreement, whole ? { seq: 0 } : undefined, {
      chunkBytes: COPY_CHUNK_BYTES,
      compress: o.compress ?? false,
    });
    const batcher = new ChunkBatcher(encoder);
    // The source's read memory comes back once a chunk's frame is serialized.
    const buffers = new ChunkBuffers();
    const send = async ({ frame, data }: { frame: CopyFrameMsg; data: Buffer[] }) =>
      sc.write(frame, () => data.forEach((d) => buffers.give(d)));
    for await (const e of source.chunks(buffers)) {
      if (!batcher.add(e)) continue;
      for (const f of batcher.take()) await send(f);
    }
    for (const f of batcher.take()) await send(f);
    await sc.write({ end: { digest: encoder.digest() } });
    await Promise.race([finished, sc.broken()]);
    sc.end();
    return {
      baseSeq,
      from,
      payloadBytes: batcher.payloadBytes,
      dataBytes: batcher.dataBytes,
      zeroBytes: batcher.zeroBytes,
    };
  } catch (e) {
    sc.cancel();
    throw e;
  } finally {
    o.signal?.removeEventListener('abort', abort);
  }
}
