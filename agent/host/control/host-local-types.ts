/**
 * TypeScript shapes of proto/secondsite/v1/host_local.proto as the loader presents them
 * (camelCase fields, 64-bit integers as decimal strings, enums as their names).
 */
export interface VmRef {
  name: string;
}
export interface NicMsg {
  network: string;
  subnet: string;
}
export interface CreateVmRequest {
  name: string;
  disks: Array<{ sizeBytes: string }>;
  nics: NicMsg[];
}
export interface ProtectVmRequest {
  name: string;
  copyFrequencySeconds: number;
  appConsistentHours: number;
}
export interface CutRecoveryPointRequest {
  name: string;
  appConsistent: boolean;
}
export type RecoveryPointTypeMsg =
  | 'RECOVERY_POINT_TYPE_UNSPECIFIED'
  | 'RECOVERY_POINT_TYPE_CRASH_CONSISTENT'
  | 'RECOVERY_POINT_TYPE_APP_CONSISTENT';
export interface RecoveryPointMsg {
  id: string;
  timeMs: string;
  type: RecoveryPointTypeMsg;
  segment: string;
  freezeFailed: string;
}
export interface LocalDiskMsg {
  index: number;
  sizeBytes: string;
  nbd: string;
  file: string;
}
export interface LocalVmMsg {
  name: string;
  id: string;
  state: string;
  protected: boolean;
  copyFrequencySeconds: number;
  appConsistentHours: number;
  disks: LocalDiskMsg[];
  nics: NicMsg[];
  journalState: string;
  unshippedBytes: string;
  guestAgentSocket: string;
  guestConnected: boolean;
  latestRecoveryPoint: RecoveryPointMsg | null;
  replication?: ReplicationStatusMsg | null;
}
export interface ListVmsReply {
  vms: LocalVmMsg[];
}
export interface ListRecoveryPointsReply {
  points: RecoveryPointMsg[];
}
export interface PairVmRequest {
  name: string;
  role: string;
  peerHost: string;
  peerAddress: string;
  vault: string;
  epoch: string;
  compression: boolean;
  disks: Array<{ sizeBytes: string }>;
}
export interface ReadPointRequest {
  name: string;
  disk: number;
  pointId: string;
  outPath: string;
}
export interface ReadPointReply {
  bytes: string;
}
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
  copyBytesDone?: string;
  copyBytesTotal?: string;
  /** Absent from hosts built before they existed. */
  resyncBytesCompared?: string;
  resyncBytesSent?: string;
}
