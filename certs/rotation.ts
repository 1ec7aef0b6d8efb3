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
