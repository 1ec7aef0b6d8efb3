/**
 * The ticket messages (proto/secondsite/v1/tickets.proto) as TypeScript shapes, and their
 * codecs from the one proto loader. uint64 fields arrive as decimal strings (the loader's long
 * option); the helpers below turn them into numbers, which is exact for times in ms or µs and
 * for sequence numbers, all below 2^53.
 */
import { messageCodec, type MessageCodec } from '../proto/load.ts';

/** Handshake frames are small: a ticket, an authenticator, a reply. */
export const HANDSHAKE_MAX_FRAME = 16 * 1024;

type U64 = string | number;

export interface TicketMsg {
  server: string;
  keyVersion: number;
  sealedBody: Buffer;
}
export interface TicketBodyMsg {
  client: string;
  server: string;
  sessionKey: Buffer;
  startTimeMs: U64;
  endTimeMs: U64;
  renewTillMs: U64;
  keyVersion: number;
  issuedAtMs: U64;
}
export interface AuthenticatorMsg {
  client: string;
  ctimeUs: U64;
  seq: U64;
  clientRandom: Buffer;
}
export interface ApRequestMsg {
  ticket: TicketMsg | null;
  sealedAuthenticator: Buffer;
}
export interface ApReplyBodyMsg {
  ctimeUs: U64;
  seq: U64;
  serverRandom: Buffer;
}
export interface ApReplyMsg {
  sealedBody: Buffer;
}
export interface ApErrorMsg {
  code: string;
  reason: string;
  serverTimeMs: U64;
}
export type TicketHandshakeMsg =
  | { step: 'apRequest'; apRequest: ApRequestMsg }
  | { step: 'apReply'; apReply: ApReplyMsg }
  | { step: 'apError'; apError: ApErrorMsg };

const cache = new Map<string, MessageCodec<unknown>>();
function codec<T>(name: string): MessageCodec<T> {
  let c = cache.get(name);
  if (!c) {
    c = messageCodec<unknown>(`secondsite.v1.${name}`);
    cache.set(name, c);
  }
  return c as MessageCodec<T>;
}

export const codecs = Object.freeze({
  ticket: () => codec<TicketMsg>('Ticket'),
  ticketBody: () => codec<TicketBodyMsg>('TicketBody'),
  authenticator: () => codec<AuthenticatorMsg>('Authenticator'),
  apReplyBody: () => codec<ApReplyBodyMsg>('ApReplyBody'),
  handshake: () => codec<TicketHandshakeMsg>('TicketHandshake'),
});

/** A uint64 field as a number (exact: every value used here is below 2^53). */
export function u64(v: U64): number {
  return typeof v === 'number' ? v : Number(v);
}

/** A bytes field as a Buffer (protobufjs may hand back a Uint8Array). */
export function bytes(v: Uint8Array | null | undefined): Buffer {
  return v ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : Buffer.alloc(0);
}

/** ErrorDetail (types.proto). */
export interface TicketErrorMsg {
  code: string;
  message: string;
  detailsJson: string;
}
/** A host's long-term key as registered (SECRET: never logged). */
export interface HostKeyRegistrationMsg {
  keyVersion: number;
  key: Buffer;
}
export interface TicketRequestMsg {
  peerHost: string;
  vm: string;
  epoch: U64;
  nonce: Buffer;
  renew?: TicketMsg | null;
}
export type TicketServiceRequestMsg = { requestId: string } & (
  | { body?: 'registerKey'; registerKey: HostKeyRegistrationMsg }
  | { body?: 'ticket'; ticket: TicketRequestMsg }
);
export interface TicketGrantMsg {
  ticket: TicketMsg | null;
  sealedBody: Buffer;
  clientKeyVersion: number;
}
export interface TicketGrantBodyMsg {
  client: string;
  server: string;
  sessionKey: Buffer;
  startTimeMs: U64;
  endTimeMs: U64;
  renewTillMs: U64;
  nonce: Buffer;
}
export interface TicketServiceReplyMsg {
  requestId: string;
  error?: TicketErrorMsg | null;
  grant?: TicketGrantMsg | null;
}

export const grantCodec = (): MessageCodec<TicketGrantBodyMsg> =>
  codec<TicketGrantBodyMsg>('TicketGrantBody');
