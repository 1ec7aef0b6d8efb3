/**
 * The guest-agent channel's messages (proto/secondsite/v1/guest_agent.proto) as TypeScript
 * shapes, with the codec for one framed envelope. Shared by the host agent (server side) and
 * the stand-in guest (agent/guest/), which are separate processes.
 */
import { messageCodec, type MessageCodec } from '../proto/load.ts';

/** The protocol versions this build speaks. */
export const GUEST_PROTOCOL = Object.freeze({ min: 1, max: 1 });

/** Frames are small control messages; anything larger is a peer gone wrong. */
export const GUEST_MAX_FRAME = 64 * 1024;

export interface GuestHello {
  vm: string;
  protocolMin: number;
  protocolMax: number;
}
export interface FreezeRequest {
  /** uint64 as a decimal string (the loader's long option). */
  id: string;
  timeoutMs: number;
}
export interface FreezeReply {
  id: string;
  ok: boolean;
  error: string;
}
export interface ThawRequest {
  id: string;
}
export interface ThawReply {
  id: string;
}

export type GuestAgentEnvelope =
  | { step: 'hello'; hello: GuestHello }
  | { step: 'freezeRequest'; freezeRequest: FreezeRequest }
  | { step: 'freezeReply'; freezeReply: FreezeReply }
  | { step: 'thawRequest'; thawRequest: ThawRequest }
  | { step: 'thawReply'; thawReply: ThawReply };

let codec: MessageCodec<GuestAgentEnvelope> | undefined;

export function guestAgentCodec(): MessageCodec<GuestAgentEnvelope> {
  codec ??= messageCodec<GuestAgentEnvelope>('secondsite.v1.GuestAgentEnvelope');
  return codec;
}
