/**
 * TypeScript shapes of proto/secondsite/v1/host_local.proto as the loader presents them
 * (camelCase fields, 64-bit integers as decimal strings, enums as their names). The messages
 * the control stream shares with it (RecoveryPoint, ReplicationStatus) are defined once, in
 * common/wire/host-control-messages.ts.
 */
import type {
  RecoveryPointMsg,
  RecoveryPointTypeMsg,
  ReplicationStatusMsg,
} from '../../../common/wire/host-control-messages.ts';

export type { RecoveryPointMsg, RecoveryPointTypeMsg, ReplicationStatusMsg };
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
