/**
 * The client end of a request/reply bidi stream (InitialCopy, ResyncHashes): frames are
 * written with HTTP/2 backpressure, replies are matched to waiters in order (the server
 * handles frames one at a time, so its replies come in the order of the frames they answer),
 * and a broken stream rejects every waiter, present and future, with one typed error.
 *
 * States: open → closed (ended, failed or cancelled).
 */
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { fromGrpcError } from '../../../common/wire/grpc-errors.ts';
import { negotiate, type Agreement, type HelloFields } from '../replication/protocol.ts';
import type { WelcomeMsg } from '../replication/wire-types.ts';
import { roomOrEnd } from './write-room.ts';

interface Waiter<R> {
  readonly step: string;
  resolve(reply: R): void;
  reject(e: SecondsiteError): void;
}

export class SyncCall<F extends object, R extends { step?: string }> {
  state: 'open' | 'closed' = 'open';
  private failure: SecondsiteError | undefined;
  private readonly waiters: Array<Waiter<R>> = [];
  private readonly failed: Promise<never>;
  private failNow: (e: SecondsiteError) => void = () => undefined;
  /** Waits for the host's bandwidth cap before each chunk (replication/bandwidth-limiter.ts). */
  pace: ((bytes: number) => Promise<void>) | undefined;

  constructor(
    private readonly call: ClientDuplexStream<F, R>,
    private readonly peerName: string,
    /** Replies no waiter asked for (e.g. CopyProgress after a flush); throw to refuse one. */
    private readonly unsolicited: (reply: R) => boolean = () => false,
  ) {
    this.failed = new Promise<never>((_, reject) => (this.failNow = reject));
    this.failed.catch(() => undefined);
    call.on('data', (r: R) => this.onReply(r));
    call.on('error', (e: ServiceError) => this.fail(fromGrpcError(e, peerName)));
    // After 'error' for a failed call; an OK status fails only what still waits.
    call.on('status', () =>
      this.fail(new SecondsiteError('SS_UNAVAILABLE', `${peerName} ended the stream`)),
    );
  }

  private onReply(reply: R): void {
    try {
      if (this.unsolicited(reply)) return;
      const head = this.waiters.shift();
      if (!head || head.step !== reply.step) {
        throw new SecondsiteError(
          'SS_PROTOCOL',
          `unexpected reply '${reply.step}' from ${this.peerName}; expected ${head?.step ?? 'none'}`,
        );
      }
      head.resolve(reply);
    } catch (e) {
      this.fail(e instanceof SecondsiteError ? e : new SecondsiteError('SS_INTERNAL', String(e)));
      this.call.cancel();
    }
  }

  fail(e: SecondsiteError): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.failure = e;
    this.failNow(e);
    for (const w of this.waiters.splice(0)) w.reject(e);
  }

  /** Registers a waiter for the next reply, which must be `step`. */
  expect(step: string): Promise<R> {
    if (this.state === 'closed') return Promise.reject(this.closedError());
    return new Promise<R>((resolve, reject) => this.waiters.push({ step, resolve, reject }));
  }

  /**
   * Writes a frame; waits while HTTP/2 flow control has no room. `written` runs once the frame
   * was serialized and handed to HTTP/2 (then its buffers may be reused); not if it never is.
   */
  async write(frame: F, written?: () => void): Promise<void> {
    if (this.state === 'closed') throw this.closedError();
    const chunk = (frame as { chunk?: { payload?: Uint8Array } }).chunk;
    if (this.pace && chunk?.payload) await this.pace(chunk.payload.length);
    const done = written && ((e?: Error | null) => void (e ? undefined : written()));
    if (done ? this.call.write(frame, done) : this.call.write(frame)) return;
    // Never rejects: a broken stream wakes it up and `fail` has set the typed failure.
    await roomOrEnd(this.call, () => this.state === 'closed');
    // The await above may have closed the stream (TypeScript cannot see that).
    if (this.failure) throw this.failure;
  }

  /** Rejects as soon as the stream breaks (to race against long local work). */
  broken(): Promise<never> {
    return this.failed;
  }

  /** Sends Hello and checks the Welcome's agreement (steps 1–2 of every stream). */
  async handshake(
    local: HelloFields,
    hello: { vmId: string; epoch: number },
    wrap: (h: object) => F,
    welcomeOf: (r: R) => WelcomeMsg | undefined,
  ): Promise<Agreement> {
    const reply = this.expect('welcome');
    await this.write(wrap({ ...local, vmId: hello.vmId, epoch: hello.epoch }));
    const w = welcomeOf(await reply);
    if (!w) throw new SecondsiteError('SS_PROTOCOL', `${this.peerName} sent no welcome`);
    const mine = negotiate(local, w);
    if (mine.protocol !== w.protocol || mine.features !== w.features) {
      throw new SecondsiteError('SS_PROTOCOL', `${this.peerName} announced another agreement`);
    }
    return mine;
  }

  /** Half-closes: no more frames; replies still arrive. */
  end(): void {
    if (this.state === 'open') this.call.end();
    this.state = 'closed';
  }

  cancel(reason = 'stream cancelled'): void {
    this.fail(new SecondsiteError('SS_CANCELLED', reason));
    this.call.cancel();
  }

  private closedError(): SecondsiteError {
    return this.failure ?? new SecondsiteError('SS_CONFLICT', 'the stream is closed');
  }
}
