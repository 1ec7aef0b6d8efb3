/**
 * Registered servers (provider agents, the "VMM servers" of R3) and their clouds (R5, R7), and
 * the connected/disconnected rule. Pure.
 *
 * Server state: `connected` while its channel is open and a heartbeat arrived within
 * HEARTBEAT_MISSES intervals; otherwise `disconnected`. After a coordinator restart every
 * server is disconnected until its provider reconnects.
 */
export const HEARTBEAT_MISSES = 3;

export interface CloudInventory {
  readonly name: string;
  readonly hostGroups: readonly string[];
  readonly logicalNetworks: readonly string[];
  readonly vmNetworks: readonly string[];
}

/** One host as its site file declares it (what policies and placement need, R9, R12). */
export interface HostInventory {
  readonly name: string;
  readonly hostGroup: string;
  /** "2012R2"; null when the site file gives none. */
  readonly osVersion: string | null;
  /** The folder for replica disks no storage map places; null when none. */
  readonly defaultStorage: string | null;
  /** Free bytes there as the provider measured it; 0 when unknown. */
  readonly defaultFreeBytes: number;
}

export interface VmNetworkInventory {
  readonly name: string;
  readonly logicalNetwork: string;
  readonly subnets: readonly { readonly name: string; readonly prefix: string }[];
}

export interface ClassificationInventory {
  readonly name: string;
  readonly locations: readonly {
    readonly host: string;
    readonly path: string;
    /** 0 when unknown. */
    readonly freeBytes: number;
  }[];
}

/**
 * What a provider reports of its site. The fabric details (hostDetails, vmNetworks,
 * classifications) are optional: records stored before providers sent them still load, and
 * such a server simply has no hosts, networks or classifications to offer until its next hello.
 */
export interface SiteInventory {
  readonly clouds: readonly CloudInventory[];
  readonly hosts: readonly string[];
  readonly hostDetails?: readonly HostInventory[];
  readonly vmNetworks?: readonly VmNetworkInventory[];
  readonly classifications?: readonly ClassificationInventory[];
}

export interface ServerRecord {
  readonly vaultId: string;
  /** Friendly name as registered ("VMM-NewYork"); unique per vault, case-insensitively. */
  readonly name: string;
  /** secondsite://<vault>/provider/<identityName>: the lower-case name. */
  readonly identityName: string;
  readonly registrationId: string;
  readonly registeredAt: string;
  readonly version: string;
  /**
   * SHA-256 of the client certificate issued at registration: only that certificate opens
   * the channel, so a re-registration under the same name shuts out the previous one.
   */
  readonly clientCertFingerprint: string;
  /** What the provider last reported (at registration and at every hello). */
  readonly inventory: SiteInventory;
}

export interface CloudRecord {
  readonly vaultId: string;
  readonly server: string;
  readonly name: string;
  readonly hostGroups: readonly string[];
  readonly logicalNetworks: readonly string[];
  readonly vmNetworks: readonly string[];
  readonly syncedAt: string;
}

export type ServerState = 'connected' | 'disconnected';

export function serverState(a: {
  channelOpen: boolean;
  lastHeartbeatAt: number | undefined;
  heartbeatMs: number;
  now: number;
}): ServerState {
  if (!a.channelOpen || a.lastHeartbeatAt === undefined) return 'disconnected';
  return a.now - a.lastHeartbeatAt <= HEARTBEAT_MISSES * a.heartbeatMs
    ? 'connected'
    : 'disconnected';
}

/** The identity name of a friendly server name (identities are lower-case only). */
export function identityNameOf(serverName: string): string {
  return serverName.toLowerCase();
}
