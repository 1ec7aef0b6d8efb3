/**
 * The public REST API's shapes (/api/v1), shared by the coordinator (which produces them) and
 * every client (the CLI, the portal, scripts). Times are ISO-8601 strings.
 */
import type { ErrorCode } from '../errors/errors.ts';

export interface ApiErrorBody {
  readonly error: {
    readonly code: ErrorCode;
    readonly message: string;
    readonly details: Readonly<Record<string, unknown>>;
  };
}

export interface VaultView {
  readonly id: string;
  readonly name: string;
  readonly createdAt: string;
}

export type JobState = 'running' | 'waiting' | 'succeeded' | 'failed' | 'cancelled';
export type StepState = 'pending' | 'running' | 'waiting' | 'succeeded' | 'failed' | 'cancelled';

export interface JobErrorView {
  readonly code: ErrorCode;
  readonly message: string;
  readonly details: Readonly<Record<string, unknown>>;
}

export interface StepView {
  readonly name: string;
  readonly kind: 'auto' | 'manual';
  /** What a person must do before `job resume`, for manual steps. */
  readonly instruction?: string;
  readonly state: StepState;
  readonly startedAt?: string;
  readonly endedAt?: string;
  /** 0..1 */
  readonly progress?: number;
  readonly result?: unknown;
  readonly error?: JobErrorView;
}

export interface JobView {
  readonly id: string;
  /** The vault's name. */
  readonly vault: string;
  readonly vaultId: string;
  readonly type: string;
  readonly state: JobState;
  readonly steps: readonly StepView[];
  readonly error: JobErrorView | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly endedAt?: string;
}

export const FINISHED_JOB_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled'];

/** A registration key as listed (never its secret). */
export interface KeyView {
  readonly id: string;
  readonly vault: string;
  readonly issuedAt: string;
  readonly expiresAt: string;
  readonly singleUse: boolean;
  /** The server name the key is bound to, or null. */
  readonly server: string | null;
  readonly revokedAt: string | null;
  /** How many registrations used the key. */
  readonly uses: number;
  readonly state: 'valid' | 'expired' | 'revoked' | 'used';
}

/** The registration key file `key download` writes (see common/wire/registration-key.ts). */
export interface KeyFileView {
  readonly version: number;
  readonly vaultId: string;
  readonly vault: string;
  readonly coordinatorUrl: string;
  readonly caFingerprint: string;
  readonly keyId: string;
  readonly secret: string;
  readonly issuedAt: string;
  readonly expiresAt: string;
  readonly singleUse: boolean;
  readonly server: string | null;
}

/** `server list` (CLI.md). */
export interface ServerView {
  readonly name: string;
  readonly state: 'connected' | 'disconnected';
  readonly version: string;
  readonly clouds: readonly string[];
}

/** `cloud list` (CLI.md); policy and pairedWith are filled by policy association. */
export interface CloudView {
  readonly server: string;
  readonly name: string;
  readonly hostGroups: readonly string[];
  readonly synced: boolean;
  readonly policy: string | null;
  readonly pairedWith: string | null;
}

/** A policy's initial replication method (R11, R15). */
export type InitialReplicationView =
  | { readonly method: 'network' }
  | { readonly method: 'scheduled'; readonly at: string }
  | { readonly method: 'offline'; readonly exportPath: string; readonly importPath: string };

/** `policy create` / `policy list` (CLI.md): every R11 field, and the policy's cloud pairs. */
export interface PolicyView {
  readonly name: string;
  /** Host OS version all hosts under the policy run; null until the first association pins it. */
  readonly hostVersion: string | null;
  readonly auth: 'certificate' | 'kerberos';
  readonly port: number;
  readonly copyFrequency: '30s' | '5m' | '15m';
  readonly retentionHours: number;
  /** 0 = off. */
  readonly appConsistentHours: number;
  readonly compression: boolean;
  readonly deleteReplicaOnDisable: boolean;
  readonly initial: InitialReplicationView;
  readonly createdAt: string;
  /** When `policy update` last changed it (absent until then). */
  readonly updatedAt?: string;
  /** SERVER/CLOUD pairs: source (primary) → target (secondary). */
  readonly associations: readonly { sourceCloud: string; targetCloud: string }[];
}

/**
 * `policy create`'s fields as the API takes them: the CLI passes its flags' text; numbers and
 * booleans are accepted too. Omitted fields take the documented defaults.
 */
export interface PolicyCreateRequest {
  readonly name: string;
  readonly hostVersion?: string;
  readonly auth?: string;
  readonly port?: string | number;
  readonly copyFrequency?: string;
  readonly retentionHours?: string | number;
  readonly appConsistentHours?: string | number;
  readonly compression?: string | boolean;
  readonly deleteReplicaOnDisable?: string | boolean;
  /** network | scheduled:ISO-TIME | offline */
  readonly initial?: string;
  readonly exportPath?: string;
  readonly importPath?: string;
}

/**
 * `policy update`'s fields (coordinator/domain/policy.ts UPDATABLE_FIELDS), loose as at create;
 * omitted fields keep their value.
 */
export interface PolicyUpdateRequest {
  readonly auth?: string;
  readonly port?: string | number;
  readonly copyFrequency?: string;
  readonly retentionHours?: string | number;
  readonly appConsistentHours?: string | number;
  readonly compression?: string | boolean;
  readonly deleteReplicaOnDisable?: string | boolean;
}

/** What `policy update` changed, and the job that re-pairs its protected items (if any). */
export interface PolicyUpdateView {
  readonly policy: PolicyView;
  /** Fields whose value changed (none when the update repeated the current values). */
  readonly changed: readonly string[];
  /** "policy.apply": pairs each protected item again with the new settings; null when none. */
  readonly job: JobView | null;
}

/** `policy associate` (CLI.md). */
export interface AssociationView {
  readonly policy: string;
  readonly sourceCloud: string;
  readonly targetCloud: string;
  readonly associatedAt: string;
}

export type MapKind = 'network' | 'storage';

/** `network-map list` / `storage-map list` (CLI.md): SERVER/NAME → SERVER/NAME. */
export interface MapView {
  readonly source: string;
  readonly target: string;
}

/** `vm list` / `vm show` (CLI.md). `nbd` is null while the VM is stopped (no export). */
export interface VmView {
  readonly name: string;
  readonly server: string;
  /** The cloud containing the VM's host's host group; null when none does. */
  readonly cloud: string | null;
  readonly host: string;
  readonly state: 'running' | 'stopped';
  readonly role: 'primary' | 'replica' | 'test' | 'none';
  readonly disks: readonly { index: number; sizeBytes: number; nbd: string | null }[];
  readonly nics: readonly { network: string; subnet: string }[];
}

/** `item list` / `item show` (CLI.md "VMs, replication, recovery points"). */
export interface ItemView {
  readonly vm: string;
  readonly state:
    | 'enabling'
    | 'initial-replication'
    | 'protected'
    | 'paused'
    | 'resync-required'
    | 'resynchronizing'
    | 'failed-over'
    | 'committed'
    | 'disabled';
  readonly health: 'normal' | 'warning' | 'critical';
  readonly policy: string;
  readonly sourceServer: string;
  readonly targetServer: string;
  readonly sourceHost: string;
  readonly targetHost: string | null;
  readonly sourceCloud: string;
  readonly targetCloud: string;
  readonly lastCycleAt: string | null;
  readonly latestRecoveryPoint: {
    id: string;
    time: string;
    type: 'crash-consistent' | 'app-consistent';
  } | null;
  readonly rpoSeconds: number | null;
  /** Each reason the item is not normal, with what to do. */
  readonly errors: readonly { code: string; message: string; action: string }[];
  /** Progress of the initial copy once one ran. */
  readonly initialReplication: {
    bytesDone: number;
    bytesTotal: number;
    /** Scheduled initial replication: when it starts (ISO); it waits until then. */
    startsAt?: string;
    /** Offline initial replication: what the administrator must do before it goes on. */
    waiting?: string;
    /** Onboarding (R19): the replica existed at the target; it is compared, not copied. */
    existingReplica?: boolean;
  } | null;
  readonly epoch: number;
  /** The test failover running now (R23). */
  readonly testFailover: { testVm: string; since: string; recoveryPoint: string | null } | null;
  /** The failover in effect (failed-over, committed). */
  readonly failover: {
    type: 'planned' | 'unplanned';
    at: string;
    recoveryPoint: { id: string; time: string; type: 'crash-consistent' | 'app-consistent' } | null;
  } | null;
  /** R22: the priority under the source host's bandwidth cap (absent from older coordinators). */
  readonly priority?: ReplicationPriority;
  /** R22 churn attribution: which disk and offset ranges write most; null when unmeasured. */
  readonly churn?: {
    readonly windowMinutes: number;
    readonly avgBytesPerHour: number;
    readonly peakBytesPerHour: number;
    readonly disks: readonly {
      disk: number;
      avgBytesPerHour: number;
      peakBytesPerHour: number;
      share: number;
    }[];
    readonly hotRegions: readonly {
      disk: number;
      offset: number;
      length: number;
      bytes: number;
      share: number;
    }[];
  } | null;
  /**
   * R22: block bytes of the VM's cycles the target host received since its agent started (not
   * the initial copy or a resync), raw and as they travelled (compressed); null when the target
   * reports none.
   */
  readonly received?: { readonly rawBytes: number; readonly wireBytes: number } | null;
}

export type ReplicationPriority = 'high' | 'normal' | 'low';

/** `host set-bandwidth` (CLI.md "Guests and capacity"): rates in MB/s (10^6 bytes). */
export interface BandwidthRequest {
  readonly host: string;
  /** MB/s outside the windows; null/absent with `unlimited`. */
  readonly limit?: number | string | null;
  readonly unlimited?: boolean;
  /** "HH:MM-HH:MM=MB/s" (or "=unlimited"), the host's local time. */
  readonly windows?: readonly string[];
}

/** A host's stored bandwidth cap and whether the host has it yet. */
export interface BandwidthView {
  /** SERVER/HOST */
  readonly host: string;
  /** MB/s outside the windows; null = unlimited. */
  readonly limitMBps: number | null;
  /** "08:00-18:00=20 MB/s" */
  readonly windows: readonly string[];
  /** "20 MB/s, 08:00-18:00=5 MB/s" */
  readonly description: string;
  readonly priorities: Readonly<Record<string, ReplicationPriority>>;
  /** The host reported this setting back. */
  readonly applied: boolean;
  /** Why it is not applied yet (the host is pushed it again when it reports). */
  readonly pending: string | null;
}

/** `host revoke` (issue #7): the host whose credentials are revoked. */
export interface RevokeHostRequest {
  /** SERVER/HOST, as `vm list` shows hosts. */
  readonly host: string;
}

/** Whether one host of the vault holds the revoked list yet. */
export interface RevokedPushView {
  /** SERVER/HOST */
  readonly host: string;
  readonly applied: boolean;
  /** Why not yet; the list is sent again while the host reports an older version. */
  readonly pending: string | null;
}

/** The vault's revoked list after `host revoke`. */
export interface RevocationView {
  /** SERVER/HOST revoked by this request. */
  readonly host: string;
  /** Its identity URI, `secondsite://<vault>/host/<name>`. */
  readonly identity: string;
  /** false when it was already revoked (nothing changed). */
  readonly changed: boolean;
  /** The list's version; every change adds one. */
  readonly version: number;
  /** Every revoked identity of the vault. */
  readonly identities: readonly string[];
  /** Every host of the vault, and whether it has this version. */
  readonly hosts: readonly RevokedPushView[];
}

/** One VM of `capacity plan` (R22); byte counts and bytes per second. */
export interface CapacityVmPlanView {
  readonly vm: string;
  readonly server: string;
  readonly cloud: string | null;
  readonly host: string;
  readonly protected: boolean;
  readonly policy: string | null;
  /** 30s | 5m | 15m of its policy; null for a candidate VM. */
  readonly copyFrequency: string | null;
  readonly priority: ReplicationPriority;
  readonly diskBytes: number;
  /**
   * Minutes of churn history the figures rest on (0: none measured; fractional only from a
   * development host counting churn in buckets shorter than a minute).
   */
  readonly measuredMinutes: number;
  readonly churnAvgBytesPerHour: number;
  readonly churnPeakBytesPerHour: number;
  /** The peak churn of one copy interval (raw bytes). */
  readonly peakBytesPerInterval: number;
  /**
   * Bytes sent per raw byte: 1 when the policy does not compress; else what replication
   * measured for the VM (`compressionMeasured`) or the plan's assumed ratio.
   */
  readonly compressionRatio: number;
  readonly compressionMeasured: boolean;
  /** Bandwidth needed to keep the copy frequency (after compression). */
  readonly requiredBytesPerSecond: number;
  /** The long-run average bandwidth (after compression). */
  readonly averageBytesPerSecond: number;
  readonly initialCopySeconds: number;
  readonly undoBytes: number;
  /** Replica disks + undo data. */
  readonly replicaStorageBytes: number;
  /** The link carries its churn (coordinator/domain/capacity.ts says in which order). */
  readonly carried: boolean;
  /** Why not carried, or what the figures lack. */
  readonly note: string | null;
}

/** `capacity plan` (R22): every VM and the totals. */
export interface CapacityPlanView {
  readonly linkBytesPerSecond: number;
  readonly compressionRatio: number;
  readonly vms: readonly CapacityVmPlanView[];
  readonly total: {
    readonly vms: number;
    readonly diskBytes: number;
    readonly requiredBytesPerSecond: number;
    readonly averageBytesPerSecond: number;
    /** All disks, one after another, at the link's bandwidth. */
    readonly initialCopySeconds: number;
    readonly undoBytes: number;
    readonly replicaStorageBytes: number;
    /** The VMs whose churn the link cannot carry. */
    readonly notCarried: readonly string[];
  };
  readonly assumptions: readonly string[];
}

/** `recovery-point list` (CLI.md). */
export interface RecoveryPointView {
  readonly id: string;
  readonly time: string;
  readonly type: 'crash-consistent' | 'app-consistent';
}

export type ReplicationAction = 'disable' | 'pause' | 'resume' | 'resync';

/** A recovery plan's action before or after a group (R28). */
export type PlanActionView =
  | { readonly kind: 'script'; readonly path: string; readonly timeoutSeconds: number }
  | { readonly kind: 'manual'; readonly text: string };

/** `plan show | list` (CLI.md "Failover and plans"). */
export interface PlanView {
  readonly name: string;
  /** SERVER/CLOUD */
  readonly sourceCloud: string;
  readonly targetCloud: string;
  /** In run order; `group` is 1-based. */
  readonly groups: readonly {
    readonly group: number;
    readonly vms: readonly string[];
    readonly before: readonly PlanActionView[];
    readonly after: readonly PlanActionView[];
  }[];
}

/** `plan add-action`: exactly one of script and manual. */
export interface PlanActionRequest {
  readonly group: number | string;
  readonly side: 'before' | 'after';
  readonly script?: string;
  readonly manual?: string;
  /** Scripts only; @default 600 */
  readonly timeoutSeconds?: number | string;
}

export type FailoverOperation =
  'test' | 'cleanup-test' | 'planned' | 'unplanned' | 'change-point' | 'commit' | 'reverse';

/** One VM (`vm`) or a recovery plan (`plan`), and the options of the operation. */
export interface FailoverBody {
  readonly vm?: string;
  readonly plan?: string;
  readonly recoveryPoint?: string;
  readonly network?: string;
  readonly shutdownSource?: boolean;
  readonly notes?: string;
}
