/**
 * The AP exchange (RFC 4120 §3.2) of the replication port 8083, as pure functions of
 * (message, keys, now). Flow and frames: proto/secondsite/v1/tickets.proto.
 *
 * The server's checks run in exactly this order, each refusal with its own code and reason:
 *   1. key version  (SS_TICKET_INVALID key-version; wrong-service for a ticket to another host)
 *   2. ticket integrity           (SS_TICKET_INVALID ticket-integrity)
 *   3. authenticator integrity    (SS_TICKET_INVALID authenticator-integrity)
 *   4. client names match         (SS_TICKET_INVALID client-mismatch)
 *   5. clock skew <= 5 min        (SS_CLOCK_SKEW)
 *   6. replay cache               (SS_REPLAY)
 *   7. not yet valid              (SS_TICKET_EXPIRED not-yet-valid)
 *   8. expired                    (SS_TICKET_EXPIRED expired)
 * Steps 7 and 8 allow the same 5 minutes of skew as step 5 (as Kerberos does): a ticket that
 * starts 1 minute in the server's future was issued by a coordinator whose clock is 1 minute
 * ahead, which the skew limit tolerates everywhere else.
 *
 * Channel keys: one per direction, HKDF(session key, salt = SHA-256(request frame ‖ reply
 * frame), label ‖ client random ‖ server random). Both randoms are fresh per connection, so
 * the counter nonces of frames.ts never repeat under one key even though a ticket (and its
 * session key) serves many connections; the transcript hash binds the channel to this
 * authentication step.
 */
import { createHash, randomBytes } from 'node:crypto';
import { SecondsiteError } from '../errors/errors.ts';
import { KEY_BYTES, LABELS, deriveKey, open, seal } from './crypto.ts';
import {
  bytes,
  codecs,
  u64,
  type ApReplyMsg,
  type ApRequestMsg,
  type AuthenticatorMsg,
} from './messages.ts';
import { MAX_SKEW_MS, replayDigest, type ReplayCache } from './replay-cache.ts';
import { openTicket, type ClientCredentials } from './ticket.ts';

export const RANDOM_BYTES = 32;

/** A new authenticator's identity: its time in µs and its sequence number. */
export interface AuthenticatorStamp {
  readonly ctimeUs: number;
  readonly seq: number;
  readonly clientRandom: Buffer;
}

/** The client's side of step 2: the request and what it must remember to check the reply. */
export function buildApRequest(
  creds: ClientCredentials,
  ctimeUs: number,
  seq = randomBytes(6).readUIntBE(0, 6),
  clientRandom = randomBytes(RANDOM_BYTES),
): { request: ApRequestMsg; stamp: AuthenticatorStamp } {
  const auth: AuthenticatorMsg = { client: creds.client, ctimeUs, seq, clientRandom };
  const sealedAuthenticator = seal(
    deriveKey(creds.sessionKey, LABELS.authenticator),
    codecs.authenticator().encode(auth),
    bytes(creds.ticket.sealedBody),
  );
  return {
    request: { ticket: creds.ticket, sealedAuthenticator },
    stamp: Object.freeze({ ctimeUs, seq, clientRandom }),
  };
}

/** What the server knows after accepting a request. */
export interface Accepted {
  readonly client: string;
  readonly server: string;
  readonly sessionKey: Buffer;
  readonly endTime: number;
  readonly keyVersion: number;
  readonly stamp: AuthenticatorStamp;
}

export interface ServerContext {
  /** This server's identity URI. */
  readonly self: string;
  /** This server's long-term key of a version (current and recent ones, for rotation). */
  readonly keyFor: (version: number) => Buffer | undefined;
  readonly replay: ReplayCache;
  readonly now: number;
  /** @default MAX_SKEW_MS */
  readonly maxSkewMs?: number;
}

const invalid = (reason: string, message: string): SecondsiteError =>
  new SecondsiteError('SS_TICKET_INVALID', message, { reason });

/** The server's checks 1–8 (header comment). Throws the first failing check's error. */
export function checkApRequest(req: ApRequestMsg, ctx: ServerContext): Accepted {
  const skew = ctx.maxSkewMs ?? MAX_SKEW_MS;
  if (!req.ticket) throw invalid('malformed', 'the request carries no ticket');
  const ticket = openTicket(req.ticket, ctx.self, ctx.keyFor); // 1, 2
  const plain = open(
    deriveKey(ticket.sessionKey, LABELS.authenticator),
    bytes(req.sealedAuthenticator),
    bytes(req.ticket.sealedBody),
  );
  if (!plain) throw invalid('authenticator-integrity', 'the authenticator failed its check'); // 3
  let auth: AuthenticatorMsg;
  try {
    auth = codecs.authenticator().decode(plain);
  } catch {
    throw invalid('authenticator-integrity', 'the authenticator is malformed');
  }
  if (auth.client !== ticket.client) {
    throw invalid('client-mismatch', 'the authenticator names another client than the ticket'); // 4
  }
  const ctimeUs = u64(auth.ctimeUs);
  const ctimeMs = Math.floor(ctimeUs / 1000);
  const skewMs = ctimeMs - ctx.now;
  if (Math.abs(skewMs) > skew) {
    throw new SecondsiteError('SS_CLOCK_SKEW', `the client's clock is ${skewMs} ms off`, {
      reason: 'skew',
      skewMs,
    }); // 5
  }
  const seq = u64(auth.seq);
  ctx.replay.admit(replayDigest(auth.client, ticket.server, ctimeUs, seq), ctimeMs, ctx.now); // 6
  if (ctx.now + skew < ticket.startTime) {
    throw new SecondsiteError('SS_TICKET_EXPIRED', 'the ticket is not valid yet', {
      reason: 'not-yet-valid',
      startTime: ticket.startTime,
    }); // 7
  }
  if (ctx.now - skew > ticket.endTime) {
    throw new SecondsiteError('SS_TICKET_EXPIRED', 'the ticket has expired', {
      reason: 'expired',
      endTime: ticket.endTime,
    }); // 8
  }
  const clientRandom = bytes(auth.clientRandom);
  if (clientRandom.length !== RANDOM_BYTES) {
    throw invalid('malformed', 'the authenticator carries no client random');
  }
  return Object.freeze({
    client: ticket.client,
    server: ticket.server,
    sessionKey: ticket.sessionKey,
    endTime: ticket.endTime,
    keyVersion: ticket.keyVersion,
    stamp: Object.freeze({ ctimeUs, seq, clientRandom }),
  });
}

/** SHA-256 of a frame's bytes: binds the reply to the request and the channel to both. */
export function frameHash(...frames: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const f of frames) h.update(f);
  return h.digest();
}

/** Step 4: the server's proof of the session key, bound to the request frame. */
export function buildApReply(
  accepted: Accepted,
  requestFrame: Buffer,
  serverRandom = randomBytes(RANDOM_BYTES),
): { reply: ApReplyMsg; serverRandom: Buffer } {
  const body = codecs.apReplyBody().encode({
    ctimeUs: accepted.stamp.ctimeUs,
    seq: accepted.stamp.seq,
    serverRandom,
  });
  const sealedBody = seal(
    deriveKey(accepted.sessionKey, LABELS.apReply),
    body,
    frameHash(requestFrame),
  );
  return { reply: { sealedBody }, serverRandom };
}

/** Step 5: the client checks the server's proof; returns the server random. */
export function checkApReply(
  reply: ApReplyMsg,
  sessionKey: Buffer,
  requestFrame: Buffer,
  stamp: AuthenticatorStamp,
): Buffer {
  const plain = open(
    deriveKey(sessionKey, LABELS.apReply),
    bytes(reply.sealedBody),
    frameHash(requestFrame),
  );
  if (!plain) throw invalid('reply-integrity', 'the server could not prove the session key');
  let body;
  try {
    body = codecs.apReplyBody().decode(plain);
  } catch {
    throw invalid('reply-integrity', 'the server reply is malformed');
  }
  const serverRandom = bytes(body.serverRandom);
  if (
    u64(body.ctimeUs) !== stamp.ctimeUs ||
    u64(body.seq) !== stamp.seq ||
    serverRandom.length !== RANDOM_BYTES
  ) {
    throw invalid('reply-mismatch', 'the server reply answers another authenticator');
  }
  return serverRandom;
}

export interface ChannelKeys {
  readonly clientToServer: Buffer;
  readonly serverToClient: Buffer;
}

/** Both directions' keys of one connection (header comment). */
export function deriveChannelKeys(
  sessionKey: Buffer,
  requestFrame: Buffer,
  replyFrame: Buffer,
  clientRandom: Buffer,
  serverRandom: Buffer,
): ChannelKeys {
  if (sessionKey.length !== KEY_BYTES) throw new SecondsiteError('SS_INTERNAL', 'bad session key');
  const salt = frameHash(requestFrame, replyFrame);
  const context = Buffer.concat([clientRandom, serverRandom]);
  return Object.freeze({
    clientToServer: deriveKey(sessionKey, LABELS.clientToServer, salt, context),
    serverToClient: deriveKey(sessionKey, LABELS.serverToClient, salt, context),
  });
}

/**
 * Authenticator times in µs that never repeat in this process, even for two connections in
 * the same millisecond (the clock gives ms; the sub-ms part counts up).
 */
export function microClock(now: () => number): () => number {
  let last = 0;
  return () => {
    last = Math.max(last + 1, now() * 1000);
    return last;
  };
}
