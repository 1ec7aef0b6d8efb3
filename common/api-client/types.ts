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
