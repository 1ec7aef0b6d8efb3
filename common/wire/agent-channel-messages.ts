/**
 * The agent channel's messages (proto/secondsite/v1/agent_channel.proto, enrollment.proto) as
 * TypeScript shapes, with the codec for one WebSocket message. Shared by the coordinator and
 * the provider agent, which are separate processes.
 */
import { SecondsiteError, type ErrorCode } from '../errors/errors.ts';
import { ERROR_CATALOGUE } from '../errors/catalogue.ts';
import { messageCodec, type MessageCodec } from '../proto/load.ts';
import type {
  HostCommand,
  HostCommandResult,
  HostInventoryReport,
} from './host-control-messages.ts';
import type { TicketServiceReplyMsg, TicketServiceRequestMsg } from '../tickets/messages.ts';

/** Channel protocol versions this build speaks. */
export const AGENT_PROTOCOL = Object.freeze({ min: 1, max: 1 });

/**
 * Largest WebSocket message accepted. The biggest frame is a registration (two CSRs of ~1 KiB
 * and an inventory); 1 MiB leaves room for a site of thousands of hosts.
 */
export const AGENT_MAX_FRAME = 1024 * 1024;

export const AGENT_CHANNEL_PATH = '/api/v1/agent';

export interface CloudInfo {
  name: string;
  hostGroups: string[];
  logicalNetworks: string[];
  vmNetworks: string[];
}
export interface HostInfoMsg {
  name: string;
  hostGroup: string;
  osVersion: string;
  defaultStorage: string;
  /** uint64 as a decimal string. */
  defaultFreeBytes: string;
}
export interface VmNetworkInfoMsg {
  name: string;
  logicalNetwork: string;
  subnets: Array<{ name: string; prefix: string }>;
}
export interface StorageClassificationInfoMsg {
  name: string;
  /** freeBytes: uint64 as a decimal string. */
  locations: Array<{ host: string; path: string; freeBytes: string }>;
}
export interface SiteInventoryMsg {
  clouds: CloudInfo[];
  hosts: string[];
  /** Absent in messages from providers built before these fields existed. */
  hostDetails?: HostInfoMsg[];
  vmNetworks?: VmNetworkInfoMsg[];
  classifications?: StorageClassificationInfoMsg[];
}
export type CloudSyncChoice =
  'CLOUD_SYNC_CHOICE_UNSPECIFIED' | 'CLOUD_SYNC_CHOICE_ALL' | 'CLOUD_SYNC_CHOICE_NONE';
export interface RegisterRequest {
  keyJson: string;
  registrationId: string;
  serverName: string;
  clientCsrPem: string;
  caCsrPem: string;
  version: string;
  syncClouds: CloudSyncChoice;
  inventory: SiteInventoryMsg;
}
export interface RegisterReply {
  vaultId: string;
  vaultName: string;
  serverName: string;
  clientCertPem: string;
  caCertPem: string;
  rootCaPem: string;
  jobId: string;
}
export interface AgentHello {
  protocolMin: number;
  protocolMax: number;
  version: string;
  inventory: SiteInventoryMsg;
}
export interface AgentWelcome {
  protocol: number;
  heartbeatMs: number;
}
export interface ErrorDetailMsg {
  code: string;
  message: string;
  detailsJson: string;
}
/** HostRelayCommand: `command.commandId` is replaced by the envelope's command id. */
export interface HostRelayCommand {
  host: string;
  command: HostCommand;
}
export type AgentCommand =
  { kind?: 'syncCloud'; syncCloud: { cloud: string } } | { kind?: 'host'; host: HostRelayCommand };
export interface AgentCommandResult {
  error?: ErrorDetailMsg | null;
  result?: 'cloud' | 'host';
  cloud?: CloudInfo;
  host?: HostCommandResult;
}

type Body =
  | { body?: 'register'; register: RegisterRequest }
  | { body?: 'registered'; registered: RegisterReply }
  | { body?: 'hello'; hello: AgentHello }
  | { body?: 'welcome'; welcome: AgentWelcome }
  | { body?: 'heartbeat'; heartbeat: { sentAtMs: string } }
  | { body?: 'command'; command: AgentCommand }
  | { body?: 'commandResult'; commandResult: AgentCommandResult }
  | { body?: 'inventoryReport'; inventoryReport: { inventory: SiteInventoryMsg } }
  | { body?: 'error'; error: ErrorDetailMsg }
  | { body?: 'hostInventory'; hostInventory: HostInventoryReport }
  | { body?: 'hostTicketRequest'; hostTicketRequest: HostTicketRequest }
  | { body?: 'hostTicketReply'; hostTicketReply: TicketServiceReplyMsg }
  | { body?: 'providerCaRequest'; providerCaRequest: ProviderCaRequest }
  | { body?: 'providerCaReply'; providerCaReply: ProviderCaReply };

/** agent_channel.proto ProviderCaRequest: a CSR for a successor of the provider's CA. */
export interface ProviderCaRequest {
  requestId: string;
  caCsrPem: string;
}

/** agent_channel.proto ProviderCaReply: the signed successor, or why not. */
export interface ProviderCaReply {
  requestId: string;
  caCertPem: string;
  error?: ErrorDetailMsg | null;
}

/** A host's request to the ticket service, relayed by its provider (agent_channel.proto). */
export interface HostTicketRequest {
  host: string;
  request: TicketServiceRequestMsg;
}

export type AgentEnvelope = { commandId?: string } & Body;

let codec: MessageCodec<AgentEnvelope> | undefined;

export function agentChannelCodec(): MessageCodec<AgentEnvelope> {
  codec ??= messageCodec<AgentEnvelope>('secondsite.v1.AgentEnvelope');
  return codec;
}

/** A SecondsiteError as an error frame body. */
export function errorDetailOf(e: SecondsiteError): ErrorDetailMsg {
  return { code: e.code, message: e.message, detailsJson: JSON.stringify(e.details) };
}

/** Rebuilds the typed error from an error frame; an unknown code is a protocol error. */
export function errorFromDetail(d: ErrorDetailMsg): SecondsiteError {
  const known = Object.hasOwn(ERROR_CATALOGUE, d.code);
  let details: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(d.detailsJson || '{}');
    if (typeof parsed === 'object' && parsed !== null) details = parsed as Record<string, unknown>;
  } catch {
    details = {};
  }
  return known
    ? new SecondsiteError(d.code as ErrorCode, d.message, details)
    : new SecondsiteError('SS_PROTOCOL', `peer sent unknown error code ${d.code}`, {});
}

/** Decodes one message; anything unreadable is SS_PROTOCOL (the receiver closes). */
export function decodeEnvelope(data: Uint8Array): AgentEnvelope {
  if (data.byteLength > AGENT_MAX_FRAME) {
    throw new SecondsiteError('SS_PROTOCOL', 'agent channel message too large', {
      size: data.byteLength,
    });
  }
  try {
    return agentChannelCodec().decode(data);
  } catch (e) {
    throw new SecondsiteError('SS_PROTOCOL', 'unreadable agent channel message', {}, { cause: e });
  }
}
