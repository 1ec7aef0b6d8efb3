/**
 * The host side of the guest-agent channel (proto/secondsite/v1/guest_agent.proto has the
 * numbered flow). The host listens on <data>/vms/<vm>/guest-agent.sock like a virtio-serial
 * channel in server mode; the guest connects and answers freeze and thaw requests.
 *
 * One guest per VM: a new connection that says hello replaces the previous one (a guest that
 * rebooted reconnects before the old socket times out).
 *
 * States: listening (no guest) → connected (a guest said hello) → listening when it leaves;
 * closed after close().
 */
import { chmodSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { Clock } from '../../../common/time/clock.ts';
import { FrameReader, frame } from '../../../common/wire/length-prefixed.ts';
import {
  GUEST_MAX_FRAME,
  GUEST_PROTOCOL,
  guestAgentCodec,
  type FreezeReply,
  type GuestAgentEnvelope,
} from '../../../common/wire/guest-agent-messages.ts';

export type GuestChannelState = 'listening' | 'connected' | 'closed';

/** The outcome of a freeze request. `ok` false means no quiesce happened; `error` says why. */
export type FreezeOutcome =
  { ok: true; id: string; thawDeadline: number } | { ok: false; id?: string; error: string };

export interface GuestAgentChannel {
  readonly socketPath: string;
  readonly state: GuestChannelState;
  /**
   * Asks the guest to freeze and waits at most `waitMs` for its answer. The guest is told to
   * thaw by itself after 2 × waitMs, so a reply that arrives just in time still leaves the host
   * `waitMs` to cut; `thawDeadline` is when the guest will thaw on its own.
   */
  freeze(waitMs: number): Promise<FreezeOutcome>;
  /** Ends a freeze (also one that was answered late or not at all). Never throws. */
  thaw(id: string): Promise<void>;
  close(): Promise<void>;
}

/** How long the host waits for a thaw reply before logging and moving on. */
const THAW_REPLY_WAIT_MS = 2000;

interface Pending {
  resolve(env: GuestAgentEnvelope | undefined): void;
  timer: NodeJS.Timeout;
}

class Channel implements GuestAgentChannel {
  state: GuestChannelState = 'listening';
  private guest: Socket | undefined;
  private nextId = 1n;
  private readonly pending = new Map<string, Pending>();

  constructor(
    readonly socketPath: string,
    private readonly server: Server,
    private readonly vm: string,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    server.on('connection', (s) => this.accept(s));
  }

  async freeze(waitMs: number): Promise<FreezeOutcome> {
    const guest = this.guest;
    if (!guest) return { ok: false, error: 'no guest agent is connected' };
    const id = String(this.nextId++);
    const sentAt = this.clock.now();
    const reply = this.await(`freeze:${id}`, waitMs);
    this.send(guest, { step: 'freezeRequest', freezeRequest: { id, timeoutMs: 2 * waitMs } });
    const env = await reply;
    if (!env) return { ok: false, id, error: `the guest did not freeze within ${waitMs} ms` };
    const r = (env as { freezeReply: FreezeReply }).freezeReply;
    if (!r.ok) return { ok: false, id, error: `the guest could not freeze: ${r.error}` };
    return { ok: true, id, thawDeadline: sentAt + 2 * waitMs };
  }

  async thaw(id: string): Promise<void> {
    const guest = this.guest;
    if (!guest) return;
    const reply = this.await(`thaw:${id}`, THAW_REPLY_WAIT_MS);
    this.send(guest, { step: 'thawRequest', thawRequest: { id } });
    if (!(await reply)) this.log.warn({ id }, 'guest did not confirm the thaw');
  }

  async close(): Promise<void> {
    this.state = 'closed';
    this.guest?.destroy();
    for (const [key, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve(undefined);
      this.pending.delete(key);
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.socketPath, { force: true });
  }

  private await(key: string, ms: number): Promise<GuestAgentEnvelope | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(key);
        resolve(undefined);
      }, ms);
      this.pending.set(key, { resolve, timer });
    });
  }

  private settle(key: string, env: GuestAgentEnvelope): void {
    const p = this.pending.get(key);
    if (!p) return; // a reply after its wait ended: the caller already moved on
    clearTimeout(p.timer);
    this.pending.delete(key);
    p.resolve(env);
  }

  private send(socket: Socket, env: GuestAgentEnvelope): void {
    socket.write(frame(guestAgentCodec().encode(env)));
  }

  private accept(socket: Socket): void {
    const reader = new FrameReader(GUEST_MAX_FRAME);
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const f of reader.push(chunk)) this.dispatch(socket, guestAgentCodec().decode(f));
      } catch (e) {
        this.log.warn({ err: e }, 'guest agent protocol error; closing its connection');
        socket.destroy();
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      if (this.guest !== socket) return;
      this.guest = undefined;
      if (this.state !== 'closed') this.state = 'listening';
      this.log.info('guest agent disconnected');
    });
  }

  /** Table of what each step means on the host side; a guest may not send requests. */
  private dispatch(socket: Socket, env: GuestAgentEnvelope): void {
    switch (env.step) {
      case 'hello':
        return this.hello(socket, env.hello.vm, env.hello.protocolMin, env.hello.protocolMax);
      case 'freezeReply':
        if (socket === this.guest) this.settle(`freeze:${env.freezeReply.id}`, env);
        return;
      case 'thawReply':
        if (socket === this.guest) this.settle(`thaw:${env.thawReply.id}`, env);
        return;
      default:
        throw new SecondsiteError('SS_PROTOCOL', `a guest may not send ${String(env.step)}`);
    }
  }

  private hello(socket: Socket, vm: string, min: number, max: number): void {
    const agreed = Math.min(max, GUEST_PROTOCOL.max);
    if (agreed < Math.max(min, GUEST_PROTOCOL.min)) {
      this.log.warn({ min, max }, 'guest agent speaks no protocol version we do; closing');
      socket.destroy();
      return;
    }
    if (vm !== this.vm) this.log.warn({ guestSays: vm }, 'guest agent names another VM');
    const previous = this.guest;
    this.guest = socket;
    this.state = 'connected';
    previous?.destroy();
    this.send(socket, {
      step: 'hello',
      hello: { vm: this.vm, protocolMin: GUEST_PROTOCOL.min, protocolMax: agreed },
    });
    this.log.info({ protocol: agreed }, 'guest agent connected');
  }
}

/** Listens on `socketPath` (mode 0600; a stale socket file from a crash is replaced). */
export async function listenGuestAgent(opts: {
  socketPath: string;
  vm: string;
  clock: Clock;
  log: Logger;
}): Promise<GuestAgentChannel> {
  rmSync(opts.socketPath, { force: true });
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socketPath, () => resolve());
  });
  chmodSync(opts.socketPath, 0o600);
  return new Channel(opts.socketPath, server, opts.vm, opts.clock, opts.log);
}
