/**
 * A ResyncPeer over the network: each call of the source's resync engine
 * (agent/host/sync/resync-source.ts `runResyncSource`) becomes the matching step of one
 * ResyncHashes stream, so the engine runs unchanged whether the replica is in this process or
 * on the peer host.
 *
 *   begin  → Hello, Welcome, ResyncStart → ResyncReply.resume
 *   diff   → RangeHashes → RangeDiff (matched by request id)
 *   apply  → the differing chunks as Chunk frames (CRC-32, zstd when asked), ResyncBatchEnd →
 *            batch_done, which the replica sends once the batch is durable
 *   finish → ResyncEnd → done; the stream is closed.
 *
 * Every apply, an empty batch's too, waits for its batch_done: the engine's contract is that
 * apply resolves once the cursor is durable, so a paused resync resumes exactly there.
 */
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Extent } from '../journal/types.ts';
import { safeInt } from '../replication/chunk-codec.ts';
import { type Agreement, type HelloFields } from '../replication/protocol.ts';
import { ChunkEncoder } from '../replication/segment-frames.ts';
import type { GridCursor } from '../sync/chunk-grid.ts';
import type { HashAlgorithm } from '../sync/chunk-hash.ts';
import type { ResyncPeer } from '../sync/types.ts';
import { SyncCall } from './sync-call.ts';
import {
  algorithmName,
  cursorFromWire,
  type ResyncFrameMsg,
  type ResyncReplyMsg,
} from './sync-wire.ts';

export interface ResyncWireStats {
  /** Payload bytes of the chunk messages (after compression): the data that travelled. */
  payloadBytes: number;
  /** Raw bytes of the differing chunks that were not all zero. */
  dataBytes: number;
  /** Bytes of hashes sent. */
  hashBytes: number;
  /** Chunk messages sent. */
  chunkMessages: number;
}

export interface RemoteResyncPeer extends ResyncPeer {
  /** Set once begun: what both sides agreed (BLAKE3 needs FEATURE_BLAKE3). */
  readonly agreement: Agreement | undefined;
  readonly stats: ResyncWireStats;
  /** Breaks the stream; the replica keeps its cursor and a new stream resumes there. */
  cancel(): void;
}

export interface RemoteResyncOptions {
  readonly vmId: string;
  readonly epoch: number;
  /** zstd level 1 per chunk (used when FEATURE_ZSTD was agreed). @default false */
  readonly compress?: boolean;
  /** Waits for the host's bandwidth cap before each chunk. */
  readonly pace?: (bytes: number) => Promise<void>;
}

type Call = ClientDuplexStream<ResyncFrameMsg, ResyncReplyMsg>;

export class NetworkResyncPeer implements RemoteResyncPeer {
  agreement: Agreement | undefined;
  readonly stats: ResyncWireStats = {
    payloadBytes: 0,
    dataBytes: 0,
    hashBytes: 0,
    chunkMessages: 0,
  };
  private sc: SyncCall<ResyncFrameMsg, ResyncReplyMsg> | undefined;
  private nextRequest = 1;

  constructor(
    private readonly openCall: () => Call,
    private readonly local: HelloFields,
    private readonly peerName: string,
    private readonly o: RemoteResyncOptions,
  ) {}

  private call(): SyncCall<ResyncFrameMsg, ResyncReplyMsg> {
    if (!this.sc || !this.agreement) throw new SecondsiteError('SS_CONFLICT', 'resync not begun');
    return this.sc;
  }

  async begin(start: { id: string; algorithm: HashAlgorithm; chunkBytes: number }) {
    this.sc?.cancel('resync begun again');
    const sc = new SyncCall<ResyncFrameMsg, ResyncReplyMsg>(this.openCall(), this.peerName);
    this.sc = sc;
    sc.pace = this.o.pace;
    this.agreement = await sc.handshake(
      this.local,
      this.o,
      (hello) => ({ hello }) as ResyncFrameMsg,
      (r) => ('welcome' in r ? r.welcome : undefined),
    );
    const resumed = sc.expect('resume');
    await sc.write({
      start: {
        vmId: this.o.vmId,
        resyncId: start.id,
        algorithm: algorithmName(start.algorithm),
        chunkBytes: start.chunkBytes,
      },
    });
    const r = await resumed;
    return { cursor: cursorFromWire('resume' in r ? r.resume : null, 'resume') };
  }

  async diff(req: { disk: number; offset: number; length: number; hashes: readonly Uint8Array[] }) {
    const sc = this.call();
    const requestId = this.nextRequest++;
    const answered = sc.expect('diff');
    const hashes = req.hashes.map((h) => Buffer.from(h.buffer, h.byteOffset, h.byteLength));
    this.stats.hashBytes += hashes.reduce((n, h) => n + h.length, 0);
    await sc.write({
      hashes: { requestId, disk: req.disk, offset: req.offset, length: req.length, hashes },
    });
    const r = await answered;
    const d = 'diff' in r ? r.diff : undefined;
    if (!d || safeInt(d.requestId, 'request_id') !== requestId) {
      throw new SecondsiteError('SS_PROTOCOL', `${this.peerName} answered another range`);
    }
    return { differ: new Uint8Array(d.differ), differingCount: d.differingCount };
  }

  async apply(extents: readonly Extent[], cursor: GridCursor): Promise<void> {
    const sc = this.call();
    // A resync batch carries no stream digest: each chunk is checked on its own.
    const encoder = new ChunkEncoder(this.agreement!, undefined, {
      compress: this.o.compress ?? false,
    });
    for (const plan of encoder.plans(extents)) {
      const chunk = encoder.encode(plan);
      this.stats.payloadBytes += chunk.payload.length;
      this.stats.dataBytes += chunk.rawLength;
      this.stats.chunkMessages++;
      await sc.write({ chunk });
    }
    const done = sc.expect('batchDone');
    await sc.write({ batchEnd: { cursor } });
    await done;
  }

  async finish(baseSeq: number): Promise<void> {
    const sc = this.call();
    const done = sc.expect('done');
    await sc.write({ end: { baseSeq } });
    await done;
    sc.end();
  }

  cancel(): void {
    this.sc?.cancel('resync cancelled');
  }
}
