/**
 * Which ticket authenticated each live 8083 connection, so the one auth adapter
 * (agent/common/caller.ts) can yield the same `Caller` on 8083 as on 8084.
 *
 * The 8083 listener hands each authenticated, unsealed byte stream to the replication gRPC
 * server as an injected connection (grpc-js `createConnectionInjector`). That stream's
 * `remoteAddress` is set to a key made here, `ticket:<128 random bits>`, which grpc-js reports
 * as the call's peer (`call.getPeer()`); the key maps to the ticket's client and end time.
 * A real TCP peer's address is an IP address and can never take this form, and a key exists
 * only while its connection is open (the listener removes it on close), so a lookup cannot
 * be steered by a remote party.
 */
import { randomBytes } from 'node:crypto';

export const TICKET_PEER_PREFIX = 'ticket:';

export interface TicketPeer {
  /** Identity URI of the client host, from the ticket. */
  readonly client: string;
  /** Identity URI of this server host. */
  readonly server: string;
  /** End of the ticket's validity (ms since the epoch); calls after it are refused. */
  readonly endTime: number;
  /** Version of the long-term key the ticket was sealed under. */
  readonly keyVersion: number;
  /** Hex id of this connection (the random part of the key), for logs. */
  readonly connectionId: string;
}

const peers = new Map<string, TicketPeer>();

/** Registers an authenticated connection; returns the key to use as its remoteAddress. */
export function registerTicketPeer(peer: Omit<TicketPeer, 'connectionId'>): {
  key: string;
  peer: TicketPeer;
} {
  const connectionId = randomBytes(16).toString('hex');
  const key = `${TICKET_PEER_PREFIX}${connectionId}`;
  const entry = Object.freeze({ ...peer, connectionId });
  peers.set(key, entry);
  return { key, peer: entry };
}

export function unregisterTicketPeer(key: string): void {
  peers.delete(key);
}

/** The ticket peer of a call's `getPeer()` string, if it is a live 8083 connection. */
export function ticketPeerOf(peerString: string | undefined): TicketPeer | undefined {
  if (!peerString?.startsWith(TICKET_PEER_PREFIX)) return undefined;
  return peers.get(peerString);
}

/** How many 8083 connections are registered (tests: every closed one was removed). */
export function ticketPeerCount(): number {
  return peers.size;
}
