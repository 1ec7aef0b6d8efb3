/**
 * The ticket service's grant (tickets.proto TicketGrant): the ticket for the peer plus the
 * session key inside it, sealed for the asker under HKDF(asker's long-term key, "ticket-reply")
 * so that neither the provider that relays it nor the agent channel sees a session key. The
 * body echoes the request's nonce (the asker refuses a grant for another request) and names
 * client and server (the asker refuses a grant for another peer). Pure: no I/O, no clock.
 */
import { SecondsiteError } from '../errors/errors.ts';
import { KEY_BYTES, LABELS, deriveKey, open, seal, type LongTermKey } from './crypto.ts';
import { bytes, grantCodec, u64, type TicketGrantMsg } from './messages.ts';
import type { ClientCredentials } from './ticket.ts';

function grantAad(client: string, keyVersion: number): Buffer {
  return Buffer.from(`${LABELS.ticketReply}\n${client}\n${keyVersion}`, 'utf8');
}

/** The service's side: seals `creds` (just issued) for the asker, who holds `clientKey`. */
export function sealGrant(
  creds: ClientCredentials,
  clientKey: LongTermKey,
  times: { startTime: number; renewTill: number },
  nonce: Buffer,
): TicketGrantMsg {
  const body = grantCodec().encode({
    client: creds.client,
    server: creds.server,
    sessionKey: creds.sessionKey,
    startTimeMs: times.startTime,
    endTimeMs: creds.endTime,
    renewTillMs: times.renewTill,
    nonce,
  });
  return {
    ticket: creds.ticket,
    sealedBody: seal(
      deriveKey(clientKey.key, LABELS.ticketReply),
      body,
      grantAad(creds.client, clientKey.version),
    ),
    clientKeyVersion: clientKey.version,
  };
}

/** What the asker keeps: its credentials plus the times it renews by. */
export interface OpenedGrant extends ClientCredentials {
  readonly startTime: number;
  /** 0: not renewable. */
  readonly renewTill: number;
}

function refused(reason: string, message: string): SecondsiteError {
  return new SecondsiteError('SS_TICKET_INVALID', message, { reason });
}

/** The asker's side: opens a grant and checks it answers this request for this peer. */
export function openGrant(
  grant: TicketGrantMsg,
  expect: { client: string; server: string; nonce: Buffer },
  keyFor: (version: number) => Buffer | undefined,
): OpenedGrant {
  const key = keyFor(grant.clientKeyVersion);
  if (!key)
    throw refused('key-version', `no own long-term key of version ${grant.clientKeyVersion}`);
  if (!grant.ticket) throw refused('grant-integrity', 'the grant carries no ticket');
  const plain = open(
    deriveKey(key, LABELS.ticketReply),
    bytes(grant.sealedBody),
    grantAad(expect.client, grant.clientKeyVersion),
  );
  if (!plain) throw refused('grant-integrity', 'the grant failed its integrity check');
  const body = grantCodec().decode(plain);
  const sessionKey = bytes(body.sessionKey);
  if (!bytes(body.nonce).equals(expect.nonce)) {
    throw refused('grant-mismatch', 'the grant answers another request');
  }
  if (body.client !== expect.client || body.server !== expect.server) {
    throw refused('grant-mismatch', 'the grant is for another pair of hosts');
  }
  if (grant.ticket.server !== expect.server || sessionKey.length !== KEY_BYTES) {
    throw refused('grant-integrity', 'the grant disagrees with its ticket');
  }
  return Object.freeze({
    client: body.client,
    server: body.server,
    ticket: { ...grant.ticket, sealedBody: bytes(grant.ticket.sealedBody) },
    sessionKey,
    startTime: u64(body.startTimeMs),
    endTime: u64(body.endTimeMs),
    renewTill: u64(body.renewTillMs),
  });
}
