/**
 * The client side of 8083: grpc-js channel credentials whose connector runs the AP exchange on
 * the TCP connection grpc-js opened and hands back the sealed stream, so HTTP/2 runs over
 * ticket-channel.ts exactly as it runs over TLS on 8084. Every new connection (grpc-js
 * reconnects by itself) makes a fresh authenticator; the ticket comes from `credentials()`,
 * which the host's ticket cache answers (fetching or renewing through the provider).
 *
 * grpc-js hook: `ChannelCredentials._createSecureConnector` (grpc-js ≥ 1.13; the abstract
 * method every credentials class implements). It is underscore-named, so a grpc-js upgrade may
 * move it; the 8083 component test fails first if it does.
 */
import type { Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { systemClock, type Clock } from '../../../common/time/clock.ts';
import {
  buildApRequest,
  checkApReply,
  deriveChannelKeys,
  microClock,
} from '../../../common/tickets/ap-exchange.ts';
import type { ClientCredentials } from '../../../common/tickets/ticket.ts';
import { SealedStream, readHandshake, writeHandshake } from './ticket-channel.ts';

export interface TicketConnectOptions {
  /** The ticket and session key for the peer (called once per connection). */
  readonly credentials: () => Promise<ClientCredentials>;
  /** The identity URI the ticket must be for (from the pairing). */
  readonly expectedPeer: string;
  /** @default systemClock */
  readonly clock?: Clock;
}

const clocks = new WeakMap<Clock, () => number>();
function microsOf(clock: Clock): () => number {
  let us = clocks.get(clock);
  if (!us) {
    us = microClock(() => clock.now());
    clocks.set(clock, us);
  }
  return us;
}

/**
 * Runs the client half of the AP exchange on `socket`; resolves with the sealed stream, or
 * rejects with the server's refusal as a typed error (code from its ApError).
 */
export async function connectTicketChannel(
  socket: Socket,
  o: TicketConnectOptions,
): Promise<SealedStream> {
  const creds = await o.credentials();
  if (creds.server !== o.expectedPeer) {
    throw new SecondsiteError('SS_TICKET_INVALID', 'the ticket is for another host', {
      reason: 'wrong-service',
    });
  }
  const { request, stamp } = buildApRequest(creds, microsOf(o.clock ?? systemClock)());
  const requestBytes = writeHandshake(socket, { step: 'apRequest', apRequest: request });
  const hs = await readHandshake(socket);
  if (hs.message.step === 'apError') {
    const { code, reason, serverTimeMs } = hs.message.apError;
    throw new SecondsiteError(code as never, `the peer refused the ticket (${reason || code})`, {
      reason,
      serverTimeMs: Number(serverTimeMs),
    });
  }
  if (hs.message.step !== 'apReply') {
    throw new SecondsiteError('SS_PROTOCOL', 'expected the ticket reply');
  }
  const serverRandom = checkApReply(hs.message.apReply, creds.sessionKey, requestBytes, stamp);
  const keys = deriveChannelKeys(
    creds.sessionKey,
    requestBytes,
    hs.bytes,
    stamp.clientRandom,
    serverRandom,
  );
  const stream = new SealedStream({
    socket,
    sendKey: keys.clientToServer,
    receiveKey: keys.serverToClient,
    rest: hs.rest,
    remoteAddress: socket.remoteAddress ?? '',
  });
  socket.resume();
  return stream;
}

type ConnectorArgs = Parameters<grpc.ChannelCredentials['_createSecureConnector']>;
type Connector = ReturnType<grpc.ChannelCredentials['_createSecureConnector']>;

class TicketChannelCredentials extends grpc.ChannelCredentials {
  constructor(private readonly opts: TicketConnectOptions) {
    super();
  }
  _isSecure(): boolean {
    return true;
  }
  _equals(other: grpc.ChannelCredentials): boolean {
    return other === this;
  }
  _createSecureConnector(...[, , callCredentials]: ConnectorArgs): Connector {
    const call = callCredentials ?? grpc.credentials.createEmpty();
    return {
      connect: async (socket: Socket) => ({
        socket: (await connectTicketChannel(socket, this.opts)) as unknown as Socket,
        secure: true,
      }),
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => call,
      destroy: () => undefined,
    };
  }
}

/** Channel credentials for a peer's 8083 (pass to a Replication client constructor). */
export function ticketChannelCredentials(o: TicketConnectOptions): grpc.ChannelCredentials {
  return new TicketChannelCredentials(o);
}
