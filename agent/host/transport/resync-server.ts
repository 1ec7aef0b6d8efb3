/**
 * The server side of ResyncHashes (replication.proto; ARCHITECTURE.md "Resync"): frames pass
 * the dispatch table and size checks of sync-wire.ts, then drive the VM's ResyncPeer on this
 * host (agent/host/sync/resync-target.ts) one proto step per call:
 *   start → begin (ResyncReply.resume), hashes → diff (ResyncReply.diff),
 *   chunk × N + batch_end → apply (ResyncReply.batch_done), end → finish (ResyncReply.done).
 * batch_done is sent only once apply resolved, which the recovery store does after the undo
 * data of the replaced blocks, the blocks and the cursor are fsynced; so the last good point
 * stays readable and a broken resync resumes at the last batch_done.
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Extent } from '../journal/types.ts';
import { decodeChunk, safeInt } from '../replication/chunk-codec.ts';
import { Feature, hasFeature } from '../replication/protocol.ts';
import { stepOf } from '../replication/ship-dispatch.ts';
import type { ResyncPeer } from '../sync/types.ts';
import { openSyncStream, type SyncDeps } from './initial-copy-server.ts';
import type { StreamContext } from './ship-server.ts';
import {
  MAX_BATCH_BYTES,
  RESYNC_STEPS,
  RESYNC_TRANSITIONS,
  assertCallerCurrent,
  checkRangeHashes,
  checkResyncStart,
  cursorFromWire,
  nextSyncState,
  type ResyncFrameMsg,
  type ResyncReplyMsg,
  type ResyncStep,
  type SyncState,
} from './sync-wire.ts';

/** Supplied by the host agent: the replica-side resync engine of a VM (a ResyncTarget). */
export type ResyncTargetFactory = (ctx: StreamContext) => ResyncPeer | Promise<ResyncPeer>;

type Stream = ServerDuplexStream<ResyncFrameMsg, ResyncReplyMsg>;

class ResyncSession {
  state: SyncState = 'await-hello';
  claimed: string | undefined;
  private ctx: StreamContext | undefined;
  private target: ResyncPeer | undefined;
  /** Differing chunks of the current batch, applied together at batch_end. */
  private batch: Extent[] = [];
  private batchBytes = 0;

  constructor(
    private readonly call: Stream,
    private readonly deps: SyncDeps,
    private readonly factory: ResyncTargetFactory,
  ) {}

  private expect(): { ctx: StreamContext; target: ResyncPeer } {
    if (!this.ctx || !this.target) throw new SecondsiteError('SS_INTERNAL', 'no resync begun');
    assertCallerCurrent(this.ctx.caller, this.deps.clock, this.deps.revoked);
    return { ctx: this.ctx, target: this.target };
  }

  readonly handlers: Record<ResyncStep, (f: ResyncFrameMsg) => Promise<void> | void> = {
    // Steps 1–2.
    hello: async (f) => {
      this.ctx = await openSyncStream(
        'hello' in f ? f.hello : null,
        this.deps,
        'resync',
        this.call,
        (vmId) => (this.claimed = vmId),
      );
    },
    // Steps 3–4.
    start: async (f) => {
      const ctx = this.ctx!;
      assertCallerCurrent(ctx.caller, this.deps.clock, this.deps.revoked);
      const blake3 = hasFeature(ctx.agreement, Feature.blake3);
      const start = checkResyncStart('start' in f ? f.start : undefined, ctx.vmId, blake3);
      this.target = await this.factory(ctx);
      const { cursor } = await this.target.begin(start);
      ctx.log.info({ resync: start.id, cursor }, 'resync stream begins');
      this.call.write({ resume: cursor });
    },
    // Steps 5–6.
    hashes: async (f) => {
      const { target } = this.expect();
      const h = checkRangeHashes('hashes' in f ? f.hashes : undefined);
      const diff = await target.diff(h);
      this.call.write({
        diff: {
          requestId: h.requestId,
          differ: Buffer.from(diff.differ),
          differingCount: diff.differingCount,
        },
      });
    },
    // Step 7: held until batch_end.
    chunk: (f) => {
      const { ctx } = this.expect();
      if (!('chunk' in f) || !f.chunk) throw new SecondsiteError('SS_PROTOCOL', 'empty chunk');
      const extents = decodeChunk(f.chunk, ctx.agreement);
      for (const e of extents) this.batchBytes += e.data?.length ?? 0;
      if (this.batchBytes > MAX_BATCH_BYTES) {
        throw new SecondsiteError('SS_PROTOCOL', `resync batch over ${MAX_BATCH_BYTES} bytes`);
      }
      this.batch.push(...extents);
    },
    // Steps 7–8: the ack of a batch means durable.
    batchEnd: async (f) => {
      const { target } = this.expect();
      const cursor = cursorFromWire('batchEnd' in f ? f.batchEnd.cursor : null, 'cursor');
      const extents = this.batch;
      this.batch = [];
      this.batchBytes = 0;
      await target.apply(extents, cursor);
      this.call.write({ batchDone: cursor });
    },
    // Steps 9–10.
    end: async (f) => {
      const { ctx, target } = this.expect();
      if (this.batch.length > 0) {
        throw new SecondsiteError('SS_PROTOCOL', 'resync ended inside a batch');
      }
      const baseSeq = safeInt('end' in f && f.end ? f.end.baseSeq : -1, 'base_seq');
      await target.finish(baseSeq);
      const expectedSeq = (await this.deps.handlers.lastApplied(ctx.vmId)) + 1;
      ctx.log.info({ baseSeq, expectedSeq }, 'resync stream done');
      this.call.write({ done: { expectedSeq } });
    },
  };
}

/** Serves one ResyncHashes stream to its end; throws what should end it with an error. */
export async function serveResync(
  call: Stream,
  deps: SyncDeps,
  factory: ResyncTargetFactory,
): Promise<void> {
  const session = new ResyncSession(call, deps, factory);
  const frames = call.iterator({ destroyOnReturn: false }) as AsyncIterable<ResyncFrameMsg>;
  try {
    for await (const frame of frames) {
      const step = stepOf(frame, RESYNC_STEPS);
      session.state = nextSyncState(RESYNC_TRANSITIONS, session.state, step);
      await session.handlers[step as ResyncStep](frame);
    }
  } finally {
    if (session.claimed !== undefined) deps.busy.delete(session.claimed);
  }
}
