/**
 * The server side of ShipSegments: frames pass the dispatch table (ship-dispatch.ts) and then
 * a handler per oneof case. Segments are verified in full (segment-assembler.ts) before the
 * receiver's `applySegment` runs, and the ack goes out only after it resolved, which the
 * recovery store does only once everything is fsynced ("ack = durably applied").
 *
 * Reading is pull-based (`for await`): while a segment is being applied no further frame is
 * read, so HTTP/2 flow control holds the sender back instead of memory filling up here.
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { SecondsiteError, isSecondsiteError } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { Clock } from '../../../common/time/clock.ts';
import type { Caller } from '../../common/caller.ts';
import type { UndoStaging } from '../recovery/types.ts';
import type { RevocationCheck } from '../../common/revocation.ts';
import type { IncomingSegment } from '../recovery/segment-check.ts';
import { safeInt } from '../replication/chunk-codec.ts';
import { negotiate, type Agreement, type HelloFields } from '../replication/protocol.ts';
import { nextShipState, stepOf, type ShipState } from '../replication/ship-dispatch.ts';
import { LiveSegmentAssembler } from '../replication/live-assembler.ts';
import { SegmentAssembler } from '../replication/segment-assembler.ts';
import type {
  AckMsg,
  HelloMsg,
  SegmentEndMsg,
  ShipFrameMsg,
  ShipReplyMsg,
  ShipStep,
  WelcomeMsg,
} from '../replication/wire-types.ts';

/** What a handler knows about the stream it serves. */
export interface StreamContext {
  readonly caller: Caller;
  readonly vmId: string;
  readonly epoch: number;
  readonly agreement: Agreement;
  readonly log: Logger;
}

/** The receiver side the server calls (wired to the recovery store by the host agent). */
export interface ReplicationHandlers {
  /** Seq of the last segment applied for the VM (0: none). */
  lastApplied(vmId: string): number | Promise<number>;
  /** Id of the newest recovery point of the VM's replica, '' for none. @default '' */
  newestPointId?(vmId: string): string | Promise<string>;
  /**
   * Applies a verified segment exactly once and resolves only when it is durable (the
   * recovery store's `apply`). A SecondsiteError becomes a REJECTED ack with its code.
   */
  applySegment(ctx: StreamContext, seg: IncomingSegment): Promise<'applied' | 'duplicate'>;
  /**
   * Optional: starts apply step 1 (the undo file) for segment `seq` while its chunks arrive
   * (recovery/undo-stager.ts); chunks' extents are added as they pass their checks. Never
   * required: undefined, or any failure, leaves step 1 to the apply.
   */
  stageUndo?(
    ctx: StreamContext,
    seq: number,
    opts?: { readonly live?: boolean },
  ): Promise<UndoStaging | undefined>;
  /**
   * A chunk of a segment arrived (before it is checked): its raw bytes and its payload as it
   * travelled, for the replica's count of what replication carried (R22).
   */
  chunkReceived?(vmId: string, rawBytes: number, wireBytes: number): void;
}

/** Pairing check: may `caller` replicate `vmId` to this host? */
export type Authorize = (caller: Caller, vmId: string) => boolean | Promise<boolean>;

export interface ShipDeps {
  readonly caller: Caller;
  readonly clock: Clock;
  readonly local: HelloFields;
  readonly authorize: Authorize;
  readonly handlers: ReplicationHandlers;
  readonly log: Logger;
  /** Revoked credentials of the vault, checked again per segment (agent/common/revocation.ts). */
  readonly revoked?: RevocationCheck;
}

export function welcomeFor(local: HelloFields, agreement: Agreement): WelcomeMsg {
  return { ...local, protocol: agreement.protocol, features: agreement.features };
}

/** Handshake shared by every stream: negotiate, then the pairing check. */
export async function acceptHello(
  hello: HelloMsg | null | undefined,
  deps: Pick<ShipDeps, 'caller' | 'local' | 'authorize'>,
): Promise<{ agreement: Agreement; vmId: string; epoch: number }> {
  if (!hello) throw new SecondsiteError('SS_PROTOCOL', 'the stream must open with Hello');
  const agreement = negotiate(deps.local, hello);
  if (!hello.vmId) throw new SecondsiteError('SS_PROTOCOL', 'Hello names no VM');
  if (!(await deps.authorize(deps.caller, hello.vmId))) {
    throw new SecondsiteError(
      'SS_NOT_PAIRED',
      `host ${deps.caller.uri} is not paired with VM ${hello.vmId} on this host`,
      { caller: deps.caller.uri, vm: hello.vmId },
    );
  }
  return { agreement, vmId: hello.vmId, epoch: safeInt(hello.epoch, 'epoch') };
}

type Stream = ServerDuplexStream<ShipFrameMsg, ShipReplyMsg>;
/** A sealed segment's assembler, or a live one's (FEATURE_LIVE_SEGMENTS). */
type Assembler = SegmentAssembler | LiveSegmentAssembler;
const STEPS: readonly ShipStep[] = ['hello', 'start', 'chunk', 'end'];

class ShipSession {
  state: ShipState = 'await-hello';
  ctx: StreamContext | undefined;
  assembler: Assembler | undefined;
  /** When the current segment's start frame arrived (performance.now()), for the debug log. */
  startedAt = 0;
  /** The current segment's undo staging, while it lasts. */
  staging: UndoStaging | undefined;

  constructor(
    private readonly call: Stream,
    private readonly deps: ShipDeps,
  ) {}

  private context(): StreamContext {
    if (!this.ctx) throw new SecondsiteError('SS_INTERNAL', 'no handshake yet');
    return this.ctx;
  }

  /**
   * A stream can outlive the certificate it was opened with, and a live segment a whole cycle:
   * the caller's certificate and revocation are checked again at each segment's start and
   * before its apply.
   */
  private checkCaller(ctx: StreamContext): void {
    if (this.deps.clock.now() > ctx.caller.certNotAfter) {
      throw new SecondsiteError('SS_CERT_INVALID', 'peer certificate has expired', {
        notAfter: new Date(ctx.caller.certNotAfter).toISOString(),
      });
    }
    this.deps.revoked?.assertNotRevoked(ctx.caller);
  }

  /** One handler per oneof case; the dispatch table has already checked the order. */
  readonly handlers: Record<ShipStep, (frame: ShipFrameMsg) => Promise<void> | void> = {
    hello: async (f) => {
      const hello = 'hello' in f ? f.hello : undefined;
      const { agreement, vmId, epoch } = await acceptHello(hello, this.deps);
      const log = this.deps.log.child({ vm: vmId, peer: this.deps.caller.uri });
      this.ctx = { caller: this.deps.caller, vmId, epoch, agreement, log };
      this.call.write({ welcome: welcomeFor(this.deps.local, agreement) });
      const last = await this.deps.handlers.lastApplied(vmId);
      this.call.write({ resume: { lastAppliedSeq: last } });
      log.info(
        { protocol: agreement.protocol, features: agreement.features, last },
        'ship stream open',
      );
    },
    start: async (f) => {
      const start = 'start' in f ? f.start : undefined;
      const ctx = this.context();
      this.checkCaller(ctx);
      if (!start || start.vmId !== ctx.vmId) {
        throw new SecondsiteError(
          'SS_PROTOCOL',
          `segment of VM ${start?.vmId} on a ${ctx.vmId} stream`,
        );
      }
      this.startedAt = performance.now();
      this.assembler = start.live
        ? new LiveSegmentAssembler(start, ctx.agreement)
        : new SegmentAssembler(start, ctx.agreement);
      this.staging = await this.deps.handlers
        .stageUndo?.(ctx, this.assembler.header.seq, { live: start.live === true })
        .catch((e: unknown) => {
          ctx.log.warn({ err: e }, 'undo staging not started; the apply writes the undo file');
          return undefined;
        });
    },
    chunk: async (f) => {
      if (!('chunk' in f) || !f.chunk || !this.assembler) {
        throw new SecondsiteError('SS_PROTOCOL', 'empty chunk');
      }
      const kept = await this.assembler.addChunk(f.chunk);
      const { rawLength, payload } = f.chunk;
      this.deps.handlers.chunkReceived?.(this.context().vmId, rawLength, payload.length);
      if (this.staging && kept.length > 0) {
        try {
          await this.staging.add(kept);
        } catch (e) {
          this.context().log.warn(
            { err: e },
            'undo staging failed; the apply writes the undo file',
          );
          this.staging = undefined;
        }
      }
    },
    end: async (f) => {
      const assembler = this.assembler;
      this.assembler = undefined;
      this.staging = undefined; // the store takes it from here (or drops it)
      if (!('end' in f) || !f.end || !assembler)
        throw new SecondsiteError('SS_PROTOCOL', 'empty end');
      this.checkCaller(this.context());
      this.call.write({ ack: await this.ackFor(assembler, f.end) });
    },
  };

  private async ackFor(assembler: Assembler, end: SegmentEndMsg): Promise<AckMsg> {
    const ctx = this.context();
    const seq = assembler.header.seq;
    try {
      const tEnd = performance.now();
      const seg = assembler.finish(end);
      const tVerified = performance.now();
      const outcome = await this.deps.handlers.applySegment(ctx, seg);
      const expectedSeq = (await this.deps.handlers.lastApplied(ctx.vmId)) + 1;
      const ms = (a: number, b: number): number => Math.round(b - a);
      ctx.log.debug(
        {
          seq,
          outcome,
          receiveMs: ms(this.startedAt, tEnd),
          verifyMs: ms(tEnd, tVerified),
          applyMs: ms(tVerified, performance.now()),
          ...assembler.logFields(),
        },
        'segment acked',
      );
      const name = outcome === 'applied' ? 'ACK_OUTCOME_APPLIED' : 'ACK_OUTCOME_DUPLICATE';
      return { seq, outcome: name, error: null, expectedSeq };
    } catch (e) {
      if (!isSecondsiteError(e)) throw e;
      const expectedSeq = (await this.deps.handlers.lastApplied(ctx.vmId)) + 1;
      ctx.log.warn({ seq, code: e.code, err: e.message }, 'segment rejected');
      const error = { code: e.code, message: e.message, detailsJson: JSON.stringify(e.details) };
      return { seq, outcome: 'ACK_OUTCOME_REJECTED', error, expectedSeq };
    }
  }
}

/** Serves one ShipSegments stream to its end; throws what should end it with an error. */
export async function serveShipStream(call: Stream, deps: ShipDeps): Promise<void> {
  const session = new ShipSession(call, deps);
  // destroyOnReturn false: a handler error must leave the call open so the error status
  // (emitted by the adapter) still reaches the client.
  const frames = call.iterator({ destroyOnReturn: false }) as AsyncIterable<ShipFrameMsg>;
  for await (const frame of frames) {
    const step = stepOf(frame, STEPS);
    session.state = nextShipState(session.state, step);
    await session.handlers[step as ShipStep](frame);
  }
}
