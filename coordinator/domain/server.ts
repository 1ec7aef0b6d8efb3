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

export interface SiteInventory {
  readonly clouds: readonly CloudInventory[];
  readonly hosts: readonly string[];
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
