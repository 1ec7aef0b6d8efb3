/**
 * proto/secondsite/v1/host_control.proto (ProviderHosts) as TypeScript shapes, the way the
 * loader presents them (camelCase, 64-bit integers as decimal strings, enums by name, oneofs
 * named by their field). Shared by the provider agent and the host agent, separate processes.
 */

import type { TicketServiceReplyMsg, TicketServiceRequestMsg } from '../tickets/messages.ts';

/** ErrorDetail (types.proto); the same shape agent-channel-messages.ts uses. */
export interface ErrorDetailMsg {
  code: string;
  message: string;
  detailsJson: string;
}

/** Control stream protocol versions this build speaks. */
export const HOST_CONTROL_PROTOCOL = Object.freeze({ min: 1, max: 1 });

export const PROVIDER_HOSTS_SERVICE = 'secondsite.v1.ProviderHosts';

export interface HostEnrolRequest {
  hostName: string;
  csrPem: string;
  tokenSecret: string;
  address: string;
}

export interface HostEnrolReply {
  vault: string;
  identity: string;
  certPem: string;
  intermediatePem: string;
  rootCaPem: string;
  server: string;
}

export interface HostRenewRequest {
  csrPem: string;
}

export interface HostRenewReply {
  certPem: string;
  intermediatePem: string;
  caBundlePem: string;
}

export type HostVmStateMsg =
  'HOST_VM_STATE_UNSPECIFIED' | 'HOST_VM_STATE_RUNNING' | 'HOST_VM_STATE_STOPPED';

export interface HostVmDiskMsg {
  index: number;
  sizeBytes: string;
  nbd: string;
  /** Filled in by the provider from its site file; absent/empty when none. */
  classification?: string;
}

export type RecoveryPointTypeMsg =
  | 'RECOVERY_POINT_TYPE_UNSPECIFIED'
  | 'RECOVERY_POINT_TYPE_CRASH_CONSISTENT'
  | 'RECOVERY_POINT_TYPE_APP_CONSISTENT';

/** types.proto RecoveryPoint; 64-bit fields as decimal strings. */
export interface RecoveryPointMsg {
  id: string;
  timeMs: string;
  type: RecoveryPointTypeMsg;
  segment: string;
  freezeFailed: string;
}

/** host_local.proto ReplicationStatus; 64-bit fields as decimal strings. */
export interface ReplicationStatusMsg {
  role: string;
  peer: string;
  state: string;
  lastAckedSeq: string;
  lastError: string;
  lastShippedAtMs: string;
  peerAddress: string;
  epoch: string;
  baseline: string;
  copyBytesDone: string;
  copyBytesTotal: string;
  /** Absent from hosts built before they existed. */
  resyncBytesCompared?: string;
  resyncBytesSent?: string;
  /** Replica: segments applied since the agent started, per channel (8084 / 8083). */
  segmentsViaCertificate?: string;
  segmentsViaTicket?: string;
  /** Replica: block bytes of cycles received since the agent started, raw and on the wire. */
  receivedRawBytes?: string;
  receivedWireBytes?: string;
}

export interface HostVmMsg {
  name: string;
  state: HostVmStateMsg;
  disks: HostVmDiskMsg[];
  nics: Array<{ network: string; subnet: string }>;
  /** The fields below are absent from hosts built before they existed. */
  replication?: ReplicationStatusMsg | null;
  protected?: boolean;
  latestPoint?: RecoveryPointMsg | null;
  pointCount?: number;
  oldestPointMs?: string;
  unshippedBytes?: string;
  paused?: boolean;
  /** 'primary' | 'replica' | 'test' | 'none' (absent/empty from older hosts). */
  role?: string;
  failover?: HostVmFailoverMsg | null;
  /** R22 (host_control.proto 30-32): measured churn, bandwidth priority, waits for the cap. */
  churn?: HostVmChurnMsg | null;
  priority?: string;
  /** uint64 as a decimal string. */
  bandwidthWaitMs?: string;
}

/** host_control.proto HostVmChurn; 64-bit fields as decimal strings. */
export interface HostVmChurnMsg {
  windowMinutes: number;
  disks: Array<{
    index: number;
    bytes: string;
    avgBytesPerHour: string;
    peakMinuteBytes: string;
    peakFiveMinutesBytes: string;
    peakQuarterHourBytes: string;
    peakHourBytes: string;
  }>;
  hotRegions: Array<{ disk: number; offset: string; length: string; bytes: string }>;
  /** Bucket length in ms; 0/absent (older hosts) = 60000. */
  bucketMs?: number;
}

/** host_control.proto BandwidthSetting; 0 = unlimited; 64-bit fields as decimal strings. */
export interface BandwidthSettingMsg {
  limitBytesPerSecond: string;
  windows: Array<{ start: string; end: string; bytesPerSecond: string }>;
  priorities: Array<{ name: string; priority: string }>;
}

/** host_control.proto HostVmFailover. */
export interface HostVmFailoverMsg {
  state: string;
  pointId: string;
  /** uint64 as a decimal string. */
  epoch: string;
  testVm: string;
}

export interface HostInventoryMsg {
  vms: HostVmMsg[];
  /** R22: the bandwidth cap in force, and now (absent from older hosts). */
  bandwidth?: BandwidthSettingMsg | null;
  /** uint64 as a decimal string; '0' = unlimited. */
  bandwidthNowBytesPerSecond?: string;
  /** The revoked-host list version the host holds (uint64 as a decimal string); '0' = none. */
  revokedVersion?: string;
}

export interface CreateHostVmCommand {
  name: string;
  disks: Array<{ sizeBytes: string; classification: string }>;
  nics: Array<{ network: string; subnet: string }>;
  start: boolean;
}

export interface PairHostVmCommand {
  name: string;
  role: 'primary' | 'replica';
  peerHost: string;
  peerAddress: string;
  /** uint64 as a decimal string. */
  epoch: string;
  compression: boolean;
  disks: Array<{ sizeBytes: string; path: string }>;
  copyFrequencySeconds: number;
  appConsistentHours: number;
  retentionHours: number;
  nics: Array<{ network: string; subnet: string }>;
  startInitialCopy: boolean;
  /** Reverse replication: '' | 'in-sync' | 'resync' (absent = ''). */
  baseline?: string;
  /** Primary: authenticate with tickets on the peer's ticket port (absent = certificates). */
  ticketAuth?: boolean;
}

/** Failover commands (host_control.proto 20-26). `point`: an id, "latest" or "latest-app-consistent". */
export interface TestFailoverCommand {
  name: string;
  point: string;
  nics: Array<{ network: string; subnet: string }>;
}
export interface FailoverCommand {
  name: string;
  point: string;
  /** uint64 as a decimal string. */
  epoch: string;
  nics: Array<{ network: string; subnet: string }>;
  digests: boolean;
}
export interface FailoverResultMsg {
  point?: RecoveryPointMsg | null;
  diskDigests: string[];
  /** uint64 as a decimal string. */
  unshippedBytes: string;
  testVm: string;
}

/** host_control.proto OfflineExportCommand / OfflineImportCommand. */
export interface OfflineTransferCommand {
  name: string;
  path: string;
  exportId: string;
}

export interface HostCommand {
  commandId: string;
  kind?:
    | 'createVm'
    | 'pairVm'
    | 'unpairVm'
    | 'pauseVm'
    | 'resyncVm'
    | 'listPoints'
    | 'exportVm'
    | 'importVm'
    | 'seedVm'
    | 'testFailover'
    | 'cleanupTest'
    | 'prepareFailover'
    | 'failover'
    | 'changePoint'
    | 'commitFailover'
    | 'fence'
    | 'setBandwidth'
    | 'setRevoked'
    | 'setTrustBundle';
  createVm?: CreateHostVmCommand;
  pairVm?: PairHostVmCommand;
  unpairVm?: { name: string; deleteReplica: boolean };
  pauseVm?: { name: string; paused: boolean };
  resyncVm?: { name: string };
  listPoints?: { name: string };
  /** Offline initial replication (R15), host_control.proto 8-10. */
  exportVm?: OfflineTransferCommand;
  importVm?: OfflineTransferCommand;
  seedVm?: { name: string; exportId: string };
  testFailover?: TestFailoverCommand;
  cleanupTest?: { name: string };
  prepareFailover?: { name: string };
  failover?: FailoverCommand;
  changePoint?: FailoverCommand;
  commitFailover?: { name: string };
  fence?: { name: string; epoch: string };
  /** R22: the host's replication bandwidth cap (host_control.proto 30). */
  setBandwidth?: BandwidthSettingMsg;
  /** Issue #7: the vault's revoked host credentials (host_control.proto 31). */
  setRevoked?: RevokedListMsg;
  /** The provider's trust bundle: vault root, then its CAs (host_control.proto 32). */
  setTrustBundle?: { bundlePem: string };
}

/** host_control.proto RevokedList; the version as a decimal string (uint64). */
export interface RevokedListMsg {
  version: string;
  identities: string[];
  fingerprints: string[];
}

export interface HostCommandResult {
  commandId: string;
  error?: ErrorDetailMsg | null;
  points?: RecoveryPointMsg[];
  vm?: HostVmMsg | null;
  failover?: FailoverResultMsg | null;
}

export type HostFrame =
  | {
      body?: 'hello';
      hello: {
        protocolMin: number;
        protocolMax: number;
        version: string;
        inventory: HostInventoryMsg;
        address?: string;
        certPort?: number;
        ticketPort?: number;
      };
    }
  | { body?: 'inventory'; inventory: HostInventoryMsg }
  | { body?: 'commandResult'; commandResult: HostCommandResult }
  | { body?: 'ticketService'; ticketService: TicketServiceRequestMsg };

export type ProviderFrame =
  | { body?: 'welcome'; welcome: { protocol: number } }
  | { body?: 'command'; command: HostCommand }
  | { body?: 'error'; error: ErrorDetailMsg }
  | { body?: 'ticketService'; ticketService: TicketServiceReplyMsg };

/** The provider's relay of one host's inventory to the coordinator (agent_channel.proto). */
export interface HostInventoryReport {
  host: string;
  hostGroup: string;
  cloud: string;
  connected: boolean;
  inventory: HostInventoryMsg;
  address?: string;
  certPort?: number;
  ticketPort?: number;
}
