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
