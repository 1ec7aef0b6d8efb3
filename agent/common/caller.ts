/**
 * The one auth adapter of the host-to-host ports (STYLE.md rule 9): every call on 8084 and on
 * 8083 becomes the same typed `Caller` before any handler runs. On 8084 the caller comes only
 * from the certificate TLS verified against the vault CA; on 8083 from the ticket the AP
 * exchange verified (the connection is registered under a `ticket:` peer name,
 * common/tickets/ticket-peers.ts). Validity is checked again on every call, because the
 * handshake checked it only when the connection was made and a connection can outlive its
 * certificate or ticket (LAB.md, gRPC).
 *
 * No gRPC import: a call is anything with grpc-js's `getAuthContext()` / `getPeer()` shape.
 */
import type { PeerCertificate } from 'node:tls';
import {
  assertPeerCertificateCurrent,
  fingerprintOfPeerCertificate,
  identityFromPeerCertificate,
} from '../../certs/peer.ts';
import { formatIdentity, parseIdentity, type Identity } from '../../certs/identity.ts';
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { Clock } from '../../common/time/clock.ts';
import { ticketPeerOf, type TicketPeer } from '../../common/tickets/ticket-peers.ts';
import type { RevocationCheck } from './revocation.ts';

/** Who is calling, as proved by its certificate (or, on 8083, its ticket). */
export interface Caller {
  readonly identity: Identity;
  /** `secondsite://<vault>/host/<name>`: the form logs and pairings use. */
  readonly uri: string;
  readonly vault: string;
  /** The host name; only host identities may call host-to-host services. */
  readonly host: string;
  /** When the credential (certificate or ticket) stops being valid (ms since the epoch). */
  readonly certNotAfter: number;
  /** SHA-256 fingerprint of the peer certificate, or `ticket:<connection>` on 8083. */
  readonly fingerprint: string;
}

/** The port whose authentication made this caller: 8083 (a ticket) or 8084 (a certificate). */
export function channelOf(caller: Caller): 'certificate' | 'ticket' {
  return caller.fingerprint.startsWith('ticket:') ? 'ticket' : 'certificate';
}

/** What a gRPC server call offers (grpc-js `ServerSurfaceCall.getAuthContext`, `getPeer`). */
export interface AuthContextSource {
  getAuthContext(): { sslPeerCertificate?: PeerCertificate | undefined } | undefined;
  getPeer?(): string;
}

/**
 * The caller of a call, or SS_UNAUTHENTICATED / SS_CERT_INVALID / SS_TICKET_EXPIRED, or
 * SS_REVOKED when `revoked` lists its identity or certificate (revocation.ts). Runs on every
 * call, so a revoked peer's open connections fail on their next call.
 */
export function callerOf(call: AuthContextSource, clock: Clock, revoked?: RevocationCheck): Caller {
  const ticket = ticketPeerOf(call.getPeer?.());
  const caller =
    ticket !== undefined
      ? callerFromTicketPeer(ticket, clock.now())
      : callerFromPeerCertificate(call.getAuthContext()?.sslPeerCertificate, clock.now());
  revoked?.assertNotRevoked(caller);
  return caller;
}

/** The caller of an 8083 connection; its ticket's end time is checked on every call. */
export function callerFromTicketPeer(peer: TicketPeer, now: number): Caller {
  if (now > peer.endTime) {
    throw new SecondsiteError('SS_TICKET_EXPIRED', 'the ticket of this connection has ended', {
      reason: 'expired',
    });
  }
  const identity = parseIdentity(peer.client);
  if (identity.kind !== 'host') {
    throw new SecondsiteError('SS_UNAUTHENTICATED', 'only host agents may call this service', {
      caller: peer.client,
    });
  }
  return Object.freeze({
    identity,
    uri: peer.client,
    vault: identity.vault,
    host: identity.name,
    certNotAfter: peer.endTime,
    fingerprint: `ticket:${peer.connectionId}`,
  });
}

export function callerFromPeerCertificate(peer: PeerCertificate | undefined, now: number): Caller {
  assertPeerCertificateCurrent(peer, now);
  const identity = identityFromPeerCertificate(peer);
  if (identity.kind !== 'host') {
    throw new SecondsiteError(
      'SS_UNAUTHENTICATED',
      `only host agents may call this service, not ${formatIdentity(identity)}`,
      { caller: formatIdentity(identity) },
    );
  }
  return Object.freeze({
    identity,
    uri: formatIdentity(identity),
    vault: identity.vault,
    host: identity.name,
    certNotAfter: Date.parse(peer?.valid_to ?? ''),
    fingerprint: fingerprintOfPeerCertificate(peer),
  });
}
