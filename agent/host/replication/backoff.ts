/**
 * Retry timing and retry decisions for host-to-host streams (pure).
 *
 * Capped exponential backoff with jitter: attempt n waits base·2ⁿ capped at maxMs, minus up to
 * `jitter` of it at random, so that many VMs reconnecting after one partition spread out
 * instead of arriving together. With the defaults: 0.5 s, 1 s, 2 s, … 30 s from attempt 6 on.
 */
import type { ErrorCode } from '../../../common/errors/catalogue.ts';

export interface BackoffPolicy {
  /** First delay. @default 500 */
  readonly initialMs: number;
  /** Upper bound of any delay. @default 30000 */
  readonly maxMs: number;
  /** Growth per attempt. @default 2 */
  readonly multiplier: number;
  /** Fraction of the delay removed at random, 0..1. @default 0.5 */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({
  initialMs: 500,
  maxMs: 30_000,
  multiplier: 2,
  jitter: 0.5,
});

/**
 * Delay before retry number `attempt` (0 for the first retry). `random` returns [0, 1) like
 * Math.random; tests pass a fixed one.
 */
export function backoffDelay(
  attempt: number,
  random: () => number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
): number {
  const n = Math.max(0, Math.floor(attempt));
  // Exponent capped so the power never overflows to Infinity for absurd attempt counts.
  const grown = policy.initialMs * policy.multiplier ** Math.min(n, 64);
  const base = Math.min(policy.maxMs, grown);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(base * (1 - policy.jitter * r));
}

/**
 * What a sender does after an error:
 * - retry: the same step again after backoff (the peer or the network had a problem);
 * - resume: ask where the peer stands (Status / Resume) and continue from there, no backoff;
 * - stop: retrying cannot help; the item shows the error until someone acts.
 */
export type RetryDecision = 'retry' | 'resume' | 'stop';

const DECISIONS: Partial<Record<ErrorCode, RetryDecision>> = Object.freeze({
  SS_PROTOCOL_INCOMPATIBLE: 'stop',
  SS_NOT_PAIRED: 'stop',
  SS_CERT_INVALID: 'stop',
  SS_UNAUTHENTICATED: 'stop',
  SS_REVOKED: 'stop',
  SS_RESYNC_REQUIRED: 'stop',
  SS_SEGMENT_OUT_OF_ORDER: 'resume',
  SS_CHECKSUM_MISMATCH: 'retry',
  SS_UNAVAILABLE: 'retry',
  SS_TIMEOUT: 'retry',
  SS_PROTOCOL: 'retry',
  SS_IO: 'retry',
  SS_INTERNAL: 'retry',
});

/** The decision for an error code; unknown codes retry (a transient fault is the safe guess). */
export function retryDecision(code: ErrorCode): RetryDecision {
  return DECISIONS[code] ?? 'retry';
}
