/**
 * Reconnect delays: capped exponential backoff with jitter. Pure; randomness is a parameter.
 * "Equal jitter": half the delay is fixed, half random, so a fleet of providers that lost the
 * coordinator together spreads its reconnects without ever retrying at once.
 */
export interface BackoffOptions {
  /** @default 500 ms */
  readonly baseMs: number;
  /** @default 30 000 ms */
  readonly capMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = Object.freeze({ baseMs: 500, capMs: 30_000 });

/** Delay before reconnect attempt `attempt` (0 = first retry); `random` in [0, 1). */
export function backoffDelay(attempt: number, random: number, opts = DEFAULT_BACKOFF): number {
  const exp = Math.min(opts.capMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(exp / 2 + (exp / 2) * random);
}
