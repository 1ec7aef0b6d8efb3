/**
 * Tickets: what the ticket service issues and only the named server host can open.
 *
 * A ticket is a TicketBody (client, server, session key, validity, key version) sealed with
 * AES-256-GCM under HKDF(server's long-term key, label "ticket"). The clear header (server,
 * key version) only picks the key; it is the AEAD's associated data, and the body repeats
 * both, so neither can be swapped without the tag failing. Pure: time is a parameter.
 */
import { randomBytes } from 'node:crypto';
import { SecondsiteError } from '../errors/errors.ts';
import { KEY_BYTES, LABELS, deriveKey, open, seal, type LongTermKey } from './crypto.ts';
import { bytes, codecs, u64, type TicketBodyMsg, type TicketMsg } from './messages.ts';

const HOUR = 60 * 60 * 1000;
/** Lifetimes (RFC 4120's customary ones): 10 h by default, never more than 1 day per ticket. */
export const TICKET_LIFETIME = Object.freeze({
  defaultMs: 10 * HOUR,
  maxMs: 24 * HOUR,
  /** A renewable ticket may be renewed until at most 7 days after it was first issued. */
  maxRenewMs: 7 * 24 * HOUR,
});

/** An opened ticket: what the server learns from it. */
export interface TicketContents {
  readonly client: string;
  readonly server: string;
  readonly sessionKey: Buffer;
  readonly startTime: number;
  readonly endTime: number;
  /** 0 when not renewable. */
  readonly renewTill: number;
  readonly keyVersion: number;
}

/** What a client holds to reach one server: the ticket and the session key inside it. */
export interface ClientCredentials {
  readonly client: string;
  readonly server: string;
  readonly ticket: TicketMsg;
  readonly sessionKey: Buffer;
  readonly endTime: number;
}

export interface IssueOptions {
  readonly client: string;
  readonly server: string;
  /** The server host's current long-term key. */
  readonly serverKey: LongTermKey;
  readonly now: number;
  /** @default now */
  readonly startTime?: number;
  /** @default TICKET_LIFETIME.defaultMs; capped at TICKET_LIFETIME.maxMs */
  readonly lifetimeMs?: number;
  /** Renewable until this time (capped at start + 7 days); @default not renewable */
  readonly renewTill?: number;
  /** Tests and renewal only: reuse this session key. @default 32 fresh random bytes */
  readonly sessionKey?: Buffer;
}

function headerAad(server: string, keyVersion: number): Buffer {
  return Buffer.from(`${LABELS.ticket}\n${server}\n${keyVersion}`, 'utf8');
}

/** Issues a ticket (the ticket service's side); returns it with the client's credentials. */
export function issueTicket(o: IssueOptions): ClientCredentials {
  const start = o.startTime ?? o.now;
  const lifetime = Math.min(o.lifetimeMs ?? TICKET_LIFETIME.defaultMs, TICKET_LIFETIME.maxMs);
  if (!(lifetime > 0)) throw new SecondsiteError('SS_BAD_INPUT', 'ticket lifetime must be > 0');
  const renewTill = o.renewTill ? Math.min(o.renewTill, start + TICKET_LIFETIME.maxRenewMs) : 0;
  const end = renewTill ? Math.min(start + lifetime, renewTill) : start + lifetime;
  const sessionKey = o.sessionKey ?? randomBytes(KEY_BYTES);
  const body: TicketBodyMsg = {
    client: o.client,
    server: o.server,
    sessionKey,
    startTimeMs: start,
    endTimeMs: end,
    renewTillMs: renewTill,
    keyVersion: o.serverKey.version,
    issuedAtMs: o.now,
  };
  const key = deriveKey(o.serverKey.key, LABELS.ticket);
  const ticket: TicketMsg = {
    server: o.server,
    keyVersion: o.serverKey.version,
    sealedBody: seal(
      key,
      codecs.ticketBody().encode(body),
      headerAad(o.server, o.serverKey.version),
    ),
  };
  return Object.freeze({ client: o.client, server: o.server, ticket, sessionKey, endTime: end });
}

function invalid(reason: string, message: string): SecondsiteError {
  return new SecondsiteError('SS_TICKET_INVALID', message, { reason });
}

/**
 * Checks 1 and 2 of the AP exchange: the key version (and that the ticket names this server),
 * then the ticket's integrity. `keyFor` gives this server's long-term key of a version.
 */
export function openTicket(
  ticket: TicketMsg,
  self: string,
  keyFor: (version: number) => Buffer | undefined,
): TicketContents {
  if (ticket.server !== self) {
    throw invalid('wrong-service', 'the ticket is for another host');
  }
  const longTerm = keyFor(ticket.keyVersion);
  if (!longTerm) {
    throw invalid('key-version', `no long-term key of version ${ticket.keyVersion}`);
  }
  const plain = open(
    deriveKey(longTerm, LABELS.ticket),
    bytes(ticket.sealedBody),
    headerAad(ticket.server, ticket.keyVersion),
  );
  if (!plain) throw invalid('ticket-integrity', 'the ticket failed its integrity check');
  let body: TicketBodyMsg;
  try {
    body = codecs.ticketBody().decode(plain);
  } catch {
    throw invalid('ticket-integrity', 'the ticket body is malformed');
  }
  const sessionKey = bytes(body.sessionKey);
  // Sealed by the ticket service under our key, so these hold unless the service is broken;
  // checked anyway because everything below trusts them.
  if (body.server !== self || body.keyVersion !== ticket.keyVersion) {
    throw invalid('ticket-integrity', 'the ticket body disagrees with its header');
  }
  if (sessionKey.length !== KEY_BYTES) {
    throw invalid('ticket-integrity', 'the ticket carries no valid session key');
  }
  return Object.freeze({
    client: body.client,
    server: body.server,
    sessionKey,
    startTime: u64(body.startTimeMs),
    endTime: u64(body.endTimeMs),
    renewTill: u64(body.renewTillMs),
    keyVersion: body.keyVersion,
  });
}

/**
 * Renews a renewable ticket (the ticket service's side, which holds every host's key): same
 * client, server and session key, a new lifetime from `now`, never past renew-till.
 */
export function renewTicket(
  ticket: TicketMsg,
  serverKey: LongTermKey,
  now: number,
  lifetimeMs = TICKET_LIFETIME.defaultMs,
): ClientCredentials {
  const t = openTicket(ticket, ticket.server, (v) =>
    v === serverKey.version ? serverKey.key : undefined,
  );
  if (!t.renewTill || now >= t.renewTill) {
    throw new SecondsiteError('SS_TICKET_EXPIRED', 'the ticket cannot be renewed any more', {
      reason: 'renew-till',
    });
  }
  if (now > t.endTime) {
    throw new SecondsiteError('SS_TICKET_EXPIRED', 'an expired ticket cannot be renewed', {
      reason: 'expired',
    });
  }
  return issueTicket({
    client: t.client,
    server: t.server,
    serverKey,
    now,
    lifetimeMs,
    renewTill: t.renewTill,
    sessionKey: t.sessionKey,
  });
}
