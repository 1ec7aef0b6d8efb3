/**
 * The client side of one ShipSegments stream. Opening it performs the handshake (Hello →
 * Welcome, Resume); then `ship` sends segments and resolves with each one's ack. Several
 * `ship` calls may be outstanding: frames go out in call order and acks come back in the same
 * order (the server handles one segment at a time).
 *
 * States: opening → open → closed (ended by either side or failed; every pending ship then
 * rejects with the same typed error).
 */
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { ERROR_CATALOGUE, type ErrorCode } from '../../../common/errors/catalogue.ts';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { fromGrpcError } from '../../../common/wire/grpc-errors.ts';
import { safeInt } from '../replication/chunk-codec.ts';
import { liveSegmentFrames, type LiveBatch } from '../replication/live-frames.ts';
import {
  Feature,
  hasFeature,
  negotiate,
  type Agreement,
  type HelloFields,
} from '../replication/protocol.ts';
import {
  segmentFrames,
  type OutgoingSegment,
  type SegmentFrameOptions,
} from '../replication/segment-frames.ts';
import type { AckMsg, ShipFrameMsg, ShipReplyMsg, WelcomeMsg } from '../replication/wire-types.ts';
import { roomOrEnd } from './write-room.ts';

export interface ShipResult {
  readonly seq: number;
  readonly outcome: 'applied' | 'duplicate';
  /** The seq the replica expects next. */
  readonly expectedSeq: number;
}

export type ShipStreamState = 'opening' | 'open' | 'closed';

type Call = ClientDuplexStream<ShipFrameMsg, ShipReplyMsg>;

interface Pending {
  readonly seq: number;
  resolve(r: ShipResult): void;
  reject(e: SecondsiteError): void;
}

/** The typed error a REJECTED ack carries (codes unknown to this build become SS_INTERNAL). */
export function rejectionError(ack: AckMsg): SecondsiteError {
  const code =
    (ack.error?.code ?? '') in ERROR_CATALOGUE ? (ack.error?.code as ErrorCode) : 'SS_INTERNAL';
  let details: Record<string, unknown> = {};
  try {
    details = JSON.parse(ack.error?.detailsJson || '{}') as Record<string, unknown>;
  } catch {
    // details are a courtesy; the code carries the meaning
  }
  return new SecondsiteError(code, ack.error?.message || `segment ${String(ack.seq)} rejected`, {
    ...details,
    seq: safeInt(ack.seq, 'seq'),
    expectedSeq: safeInt(ack.expectedSeq, 'expected_seq'),
  });
}

export class ShipStream {
  state: ShipStreamState = 'opening';
  /** Set once open: what both sides agreed. */
  agreement: Agreement | undefined;
  /** Set once open: the replica's last applied seq when the stream opened. */
  lastApplied = 0;
  private readonly pending: Pending[] = [];
  private failure: SecondsiteError | undefined;
  private opened: { resolve(): void; reject(e: SecondsiteError): void } | undefined;
  private writing: Promise<void> = Promise.resolve();
  /** Waits for the host's bandwidth cap before each chunk (replication/bandwidth-limiter.ts). */
  pace: ((bytes: number) => Promise<void>) | undefined;

  constructor(
    private readonly call: Call,
    private readonly local: HelloFields,
    private readonly peerName: string,
  ) {
    call.on('data', (reply: ShipReplyMsg) => this.onReply(reply));
    call.on('error', (e: ServiceError) => this.fail(fromGrpcError(e, this.peerName)));
    // 'status' comes last, after 'error' for a failed call: an OK status means the server
    // ended the stream normally, which fails only what was still waiting.
    call.on('status', () =>
      this.fail(new SecondsiteError('SS_UNAVAILABLE', `${this.peerName} ended the ship stream`)),
    );
  }

  /** Sends Hello and waits for Welcome and Resume. */
  open(hello: { vmId: string; epoch: number }): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.opened = { resolve, reject };
      this.call.write({ hello: { ...this.local, vmId: hello.vmId, epoch: hello.epoch } });
    });
  }

  private onWelcome(w: WelcomeMsg): void {
    // Both sides compute the agreement; a server that disagrees is broken.
    const mine = negotiate(this.local, w);
    if (mine.protocol !== w.protocol || mine.features !== w.features) {
      throw new SecondsiteError('SS_PROTOCOL', `${this.peerName} announced another agreement`);
    }
    this.agreement = mine;
  }

  private onReply(reply: ShipReplyMsg): void {
    try {
      if ('welcome' in reply && reply.welcome && this.state === 'opening')
        this.onWelcome(reply.welcome);
      else if ('resume' in reply && reply.resume && this.state === 'opening' && this.agreement) {
        this.lastApplied = safeInt(reply.resume.lastAppliedSeq, 'last_applied_seq');
        this.state = 'open';
        this.opened?.resolve();
      } else if ('ack' in reply && reply.ack && this.state === 'open') this.onAck(reply.ack);
      else throw new SecondsiteError('SS_PROTOCOL', `unexpected reply from ${this.peerName}`);
    } catch (e) {
      const err = e instanceof SecondsiteError ? e : new SecondsiteError('SS_INTERNAL', String(e));
      this.fail(err);
      this.call.cancel();
    }
  }

  private onAck(ack: AckMsg): void {
    const head = this.pending.shift();
    const seq = safeInt(ack.seq, 'seq');
    if (!head || head.seq !== seq) {
      throw new SecondsiteError('SS_PROTOCOL', `ack for segment ${seq}, expected ${head?.seq}`);
    }
    if (ack.outcome === 'ACK_OUTCOME_REJECTED') head.reject(rejectionError(ack));
    else if (ack.outcome === 'ACK_OUTCOME_APPLIED' || ack.outcome === 'ACK_OUTCOME_DUPLICATE') {
      head.resolve({
        seq,
        outcome: ack.outcome === 'ACK_OUTCOME_APPLIED' ? 'applied' : 'duplicate',
        expectedSeq: safeInt(ack.expectedSeq, 'expected_seq'),
      });
    } else throw new SecondsiteError('SS_PROTOCOL', `ack outcome ${ack.outcome}`);
  }

  private fail(e: SecondsiteError): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.failure = e;
    this.opened?.reject(e);
    for (const p of this.pending.splice(0)) p.reject(e);
  }

  /**
   * Ships one segment; resolves with its ack (durably applied, or a duplicate of an applied
   * one). Rejects with the REJECTED ack's typed error, or the stream's if it broke: see
   * replication/backoff.ts `retryDecision` for what to do next.
   */
  ship(seg: OutgoingSegment, opts: SegmentFrameOptions = {}): Promise<ShipResult> {
    return this.send(seg.seq, (agreement) => segmentFrames(seg, agreement, opts));
  }

  /**
   * Ships segment `seq` live (FEATURE_LIVE_SEGMENTS, live-frames.ts): its chunks as `batches`
   * yields them, while the journal still writes it, and its end with the batch that carries
   * the point. Resolves with the ack like `ship`; an error thrown by `batches` fails the stream
   * with that error (the replica discards what it held of the segment).
   */
  shipLive(
    seg: { readonly vmId: string; readonly seq: number },
    batches: AsyncIterable<LiveBatch>,
    opts: SegmentFrameOptions = {},
  ): Promise<ShipResult> {
    return this.send(seg.seq, (agreement) => liveSegmentFrames(seg, batches, agreement, opts));
  }

  /** Whether the stream may carry live segments (both sides agreed on the feature). */
  get live(): boolean {
    return this.agreement !== undefined && hasFeature(this.agreement, Feature.liveSegments);
  }

  private send(
    seq: number,
    frames: (agreement: Agreement) => Iterable<ShipFrameMsg> | AsyncIterable<ShipFrameMsg>,
  ): Promise<ShipResult> {
    if (this.state !== 'open' || !this.agreement) {
      return Promise.reject(
        this.failure ?? new SecondsiteError('SS_CONFLICT', 'ship stream is not open'),
      );
    }
    const agreement = this.agreement;
    const acked = new Promise<ShipResult>((resolve, reject) =>
      this.pending.push({ seq, resolve, reject }),
    );
    // Segments are written one after another, never interleaved. The chain never rejects: a
    // failure while writing (or framing) fails the stream, which rejects the pending acks, so
    // nothing is left for an unhandled rejection.
    this.writing = this.writing
      .then(() => this.writeFrames(frames(agreement)))
      .catch((e: unknown) => {
        const err =
          e instanceof SecondsiteError
            ? e
            : new SecondsiteError('SS_INTERNAL', e instanceof Error ? e.message : String(e));
        this.fail(err);
        this.call.cancel();
      });
    return acked;
  }

  private async writeFrames(
    frames: Iterable<ShipFrameMsg> | AsyncIterable<ShipFrameMsg>,
  ): Promise<void> {
    for await (const frame of frames) {
      if (this.pace && 'chunk' in frame && frame.chunk) await this.pace(frame.chunk.payload.length);
      if (this.state === 'closed') return;
      // Wait for HTTP/2 flow control to make room, or for the stream to die (then the loop
      // ends: fail() already rejected what waits).
      if (!this.call.write(frame)) await roomOrEnd(this.call, () => this.state === 'closed');
    }
  }

  /** Ends the stream after pending segments were written; acks still arrive. */
  async close(): Promise<void> {
    await this.writing;
    if (this.state !== 'closed') this.call.end();
  }

  /** Breaks the stream now; pending ships reject. */
  cancel(): void {
    this.fail(new SecondsiteError('SS_CANCELLED', 'ship stream cancelled'));
    this.call.cancel();
  }
}
