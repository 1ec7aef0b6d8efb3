/**
 * The ticket port (8083): the same Replication gRPC server as 8084, reached after a
 * Kerberos-style AP exchange instead of mutual TLS (docs/security.md).
 *
 * Per connection:
 *  1. TCP accept; the client's first frame must be an ApRequest within 10 s.
 *  2. The AP checks (common/tickets/ap-exchange.ts, in the order). A refusal is
 *     answered with ApError {code, reason} and the connection is closed; nothing else is said.
 *  3. ApReply proves the session key; both sides derive the channel keys.
 *  4. The connection becomes a SealedStream (ticket-channel.ts), registered in
 *     common/tickets/ticket-peers.ts under a random key that becomes its remoteAddress, and is
 *     injected into the replication server's grpc-js Server (`createConnectionInjector`, with
 *     insecure credentials: the sealing is done here). So no unsealed byte ever touches a
 *     socket, and every handler, the Hello and `authorize` are the very ones 8084 runs.
 *  5. The caller of each call is the ticket's client (agent/common/caller.ts looks the peer
 *     key up); the connection is closed when the ticket ends.
 *
 * States: created → listening (listen/run) → closed (shutdown).
 */
import type { EventEmitter } from 'node:events';
import type { Http2Session } from 'node:http2';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { Service } from '../../../common/lifecycle/lifecycle.ts';
import type { Logger } from '../../../common/log/log.ts';
import { SecondsiteError, isSecondsiteError } from '../../../common/errors/errors.ts';
import { systemClock, type Clock } from '../../../common/time/clock.ts';
import {
  buildApReply,
  checkApRequest,
  deriveChannelKeys,
} from '../../../common/tickets/ap-exchange.ts';
import type { ReplayCache } from '../../../common/tickets/replay-cache.ts';
import { registerTicketPeer, unregisterTicketPeer } from '../../../common/tickets/ticket-peers.ts';
import { FLOW_CONTROL_WINDOW } from './grpc-options.ts';
import { raiseServerWindows } from './server-window.ts';
import { SealedStream, readHandshake, writeHandshake } from './ticket-channel.ts';

export interface TicketServerOptions {
  /** Address to listen on (the host agent's address). */
  readonly address: string;
  /** @default 8083 (0 picks a free port, for tests) */
  readonly port?: number;
  /** The replication server's grpc-js Server (ReplicationServer.grpcServer). */
  readonly grpcServer: grpc.Server;
  /** This host's identity URI (secondsite://<vault>/host/<name>). */
  readonly self: string;
  /** This host's long-term key of a version: the current one and, during rotation, the last. */
  readonly keyFor: (version: number) => Buffer | undefined;
  /** The host's replay cache (one per host, shared by all its 8083 listeners). */
  readonly replay: ReplayCache;
  readonly log: Logger;
  /** @default systemClock */
  readonly clock?: Clock;
}

export interface TicketServer extends Service {
  /** Binds and starts serving; resolves with the bound port. Idempotent. */
  listen(): Promise<number>;
}

/** The node:http2 servers grpc-js keeps privately (as server-window.ts reads them). */
function http2ServersOf(server: grpc.Server): EventEmitter[] {
  const internal = (server as unknown as { http2Servers?: unknown }).http2Servers;
  return internal instanceof Map ? [...(internal.keys() as IterableIterator<EventEmitter>)] : [];
}

/**
 * Step 5's plumbing. node:http2 wraps a stream that is not a net.Socket (our SealedStream) in
 * an internal JSStreamSocket, whose `remoteAddress` reads its cached `_peername` because its
 * handle has no getpeername. Setting that cache, before any call arrives on the session
 * (the 'session' event is synchronous with the injection), makes grpc-js report the
 * ticket-peers key as the call's peer. Node internals: the 8083 component test fails first
 * if they change; the fallback design is a loopback hop (docs/security.md).
 */
function nameTicketPeer(session: Http2Session): void {
  const socket = session.socket as unknown as { stream?: unknown; _peername?: unknown };
  if (socket.stream instanceof SealedStream) {
    socket._peername = { address: socket.stream.remoteAddress };
  }
}

export function createTicketServer(opts: TicketServerOptions): TicketServer {
  const log = opts.log.child({ component: 'ticket-server' });
  const clock = opts.clock ?? systemClock;
  const before = new Set(http2ServersOf(opts.grpcServer));
  const injector = opts.grpcServer.createConnectionInjector(
    grpc.ServerCredentials.createInsecure(),
  );
  const injected = http2ServersOf(opts.grpcServer).filter((h) => !before.has(h));
  if (injected.length !== 1) {
    throw new SecondsiteError(
      'SS_INTERNAL',
      'cannot find the http2 server of the 8083 injector (grpc-js internals changed)',
    );
  }
  injected[0]!.on('session', nameTicketPeer);
  raiseServerWindows(opts.grpcServer, FLOW_CONTROL_WINDOW);
  const sockets = new Set<Socket>();
  const net: NetServer = createServer({ pauseOnConnect: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.setNoDelay(true);
    accept(socket).catch((e: unknown) => {
      log.warn({ err: (e as Error).message }, 'ticket connection failed');
      socket.destroy();
    });
  });

  async function accept(socket: Socket): Promise<void> {
    const hs = await readHandshake(socket);
    if (hs.message.step !== 'apRequest') {
      writeHandshake(socket, {
        step: 'apError',
        apError: { code: 'SS_PROTOCOL', reason: 'expected-request', serverTimeMs: clock.now() },
      });
      socket.end();
      return;
    }
    let accepted;
    try {
      accepted = checkApRequest(hs.message.apRequest, {
        self: opts.self,
        keyFor: opts.keyFor,
        replay: opts.replay,
        now: clock.now(),
      });
    } catch (e) {
      const code = isSecondsiteError(e) ? e.code : 'SS_INTERNAL';
      const reason = isSecondsiteError(e) ? String(e.details['reason'] ?? '') : '';
      log.warn({ code, reason, remote: socket.remoteAddress }, 'ticket refused');
      writeHandshake(socket, {
        step: 'apError',
        apError: { code, reason, serverTimeMs: clock.now() },
      });
      socket.end();
      return;
    }
    const { reply, serverRandom } = buildApReply(accepted, hs.bytes);
    const replyBytes = writeHandshake(socket, { step: 'apReply', apReply: reply });
    const keys = deriveChannelKeys(
      accepted.sessionKey,
      hs.bytes,
      replyBytes,
      accepted.stamp.clientRandom,
      serverRandom,
    );
    const { key, peer } = registerTicketPeer({
      client: accepted.client,
      server: accepted.server,
      endTime: accepted.endTime,
      keyVersion: accepted.keyVersion,
    });
    const stream = new SealedStream({
      socket,
      sendKey: keys.serverToClient,
      receiveKey: keys.clientToServer,
      rest: hs.rest,
      remoteAddress: key,
    });
    // The ticket's end closes the connection (calls after it are refused per call anyway).
    const ends = setTimeout(
      () => stream.destroy(),
      Math.min(Math.max(0, accepted.endTime - clock.now()), 2 ** 31 - 1),
    );
    ends.unref();
    stream.once('close', () => {
      clearTimeout(ends);
      unregisterTicketPeer(key);
    });
    stream.on('error', (e) => log.debug({ err: e.message, conn: peer.connectionId }, 'closed'));
    log.info(
      { peer: accepted.client, conn: peer.connectionId, keyVersion: accepted.keyVersion },
      'ticket accepted',
    );
    injector.injectConnection(stream);
    socket.resume();
  }

  let port: number | undefined;
  let stopped: () => void = () => undefined;

  async function listen(): Promise<number> {
    if (port !== undefined) return port;
    port = await new Promise<number>((resolve, reject) => {
      net.once('error', reject);
      net.listen(opts.port ?? 8083, opts.address, () => {
        net.off('error', reject);
        const a = net.address();
        resolve(typeof a === 'object' && a ? a.port : 0);
      });
    });
    log.info({ address: opts.address, port }, 'ticket port listening');
    return port;
  }

  return {
    listen,
    async run(signal: AbortSignal): Promise<void> {
      await listen();
      await new Promise<void>((resolve) => {
        stopped = resolve;
        if (signal.aborted) resolve();
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    },
    async shutdown(): Promise<void> {
      const closed = new Promise<void>((resolve) => net.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
      injector.destroy();
      stopped();
    },
  };
}
