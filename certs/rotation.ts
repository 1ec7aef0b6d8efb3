/**
 * Rotation times, as pure functions of certificate times and `now` (ms since the epoch).
 *
 * Leaves renew at half-life: a failed renewal then has the whole second half to be retried
 * before the certificate expires.
 *
 * CAs rotate through prepared → active → old (the SPIRE shape): the successor is made and
 * published to every trust bundle at the current CA's half-life (prepared), so that by the
 * time it signs anything every peer already trusts it; it becomes the signer at 5/6 of the
 * current CA's life (active), and the previous CA stays trusted (old) until its notAfter,
 * because leaves it signed are cut to its lifetime and so expire no later than it does.
 * The last 1/6 must therefore exceed the time a peer needs to fetch a new bundle.
 */
export interface Validity {
  /** ms since the epoch */
  readonly notBefore: number;
  readonly notAfter: number;
}

export type CaState = 'prepared' | 'active' | 'old' | 'expired';

export function halfLife(v: Validity): number {
  return v.notBefore + (v.notAfter - v.notBefore) / 2;
}

/** True from the certificate's half-life on (and after expiry). */
export function renewalDue(notBefore: number, notAfter: number, now: number): boolean {
  return now >= halfLife({ notBefore, notAfter });
}

export interface CaRotationPlan {
  /** When to make and publish the successor CA. */
  readonly prepareNextAt: number;
  /** When the successor starts signing and this CA becomes old. */
  readonly activateNextAt: number;
}

export function caRotationPlan(ca: Validity): CaRotationPlan {
  const life = ca.notAfter - ca.notBefore;
  return {
    prepareNextAt: ca.notBefore + life / 2,
    activateNextAt: ca.notBefore + (life * 5) / 6,
  };
}

/**
 * The state of one CA generation. `activatesAt` is when it starts signing: its own notBefore
 * for the first CA, its predecessor's `activateNextAt` for the others.
 */
export function caRotationState(
  ca: Validity & { readonly activatesAt: number },
  now: number,
): CaState {
  if (now >= ca.notAfter) return 'expired';
  if (now < ca.activatesAt) return 'prepared';
  return now < caRotationPlan(ca).activateNextAt ? 'active' : 'old';
}

/** What the CA manager should do now, given the active CA and whether a successor exists. */
export function caRotationAction(
  active: Validity,
  hasSuccessor: boolean,
  now: number,
): 'none' | 'prepare' | 'activate' {
  const plan = caRotationPlan(active);
  if (!hasSuccessor) return now >= plan.prepareNextAt ? 'prepare' : 'none';
  return now >= plan.activateNextAt ? 'activate' : 'none';
}

export interface RenewalSchedule {
  /** How often the certificate is looked at even when nothing is due. @default 60000 */
  readonly checkEveryMs: number;
  /** First retry delay after a failed renewal, doubling per failure. @default 5000 */
  readonly retryInitialMs: number;
  /** Longest retry delay. @default 300000 */
  readonly retryMaxMs: number;
}

/**
 * A minute between checks costs nothing and bounds how late a renewal can start after a clock
 * jump or suspend; retries double from 5 s to 5 min, so a provider down for hours is asked
 * about 12 times an hour, and with a year's certificate the second half leaves months.
 */
export const DEFAULT_RENEWAL_SCHEDULE: RenewalSchedule = Object.freeze({
  checkEveryMs: 60_000,
  retryInitialMs: 5_000,
  retryMaxMs: 300_000,
});

/**
 * When the renewer should next look (ms since the epoch), given the current certificate's
 * validity and how many renewal attempts in a row have failed: after a failure, the backoff;
 * otherwise now when renewal is due, else the next periodic check or the half-life, whichever
 * comes first (so a short-lived certificate is not renewed up to a check period late).
 */
export function nextRenewalCheck(
  cert: Validity,
  now: number,
  failures: number,
  s: RenewalSchedule = DEFAULT_RENEWAL_SCHEDULE,
): number {
  if (failures > 0) {
    const exp = Math.min(failures - 1, 32);
    return now + Math.min(s.retryMaxMs, s.retryInitialMs * 2 ** exp);
  }
  const due = halfLife(cert);
  if (now >= due) return now;
  return Math.min(now + s.checkEveryMs, due);
}
