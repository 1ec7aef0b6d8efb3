/**
 * When the provider's CA rotates, as pure functions of the two generations' lives and `now`
 * (ms since the epoch). The shape is certs/rotation.ts's (SPIRE's prepared → active → old):
 *
 *   current's half-life   prepare: make a successor ("next") and publish {current, next}
 *   current's 5/6         activate: next signs host certificates (and the server's own)
 *   current's notAfter    retire: current has expired with every leaf it signed; next
 *                         becomes current, and the cycle starts again from its half-life
 *
 * Lives here are as ISSUED: a certificate's notBefore is backdated for clock skew (5 min,
 * certs/forge-pki.ts), which is not part of its life; the caller adds it back. Over a year it
 * is noise, but it would put a short-lived CA's half-life before its issue.
 */
import { caRotationAction, caRotationPlan, type Validity } from '../../../certs/rotation.ts';

export type ProviderCaStep = 'none' | 'prepare' | 'retire';

/** What to do now with the current CA and its successor (when one exists). */
export function providerCaStep(
  current: Validity,
  next: Validity | undefined,
  now: number,
): ProviderCaStep {
  if (next === undefined)
    return caRotationAction(current, false, now) === 'prepare' ? 'prepare' : 'none';
  return now >= current.notAfter ? 'retire' : 'none';
}

/** Which generation signs now: the successor from the current CA's activation on. */
export function signingGeneration(
  current: Validity,
  next: Validity | undefined,
  now: number,
): 'current' | 'next' {
  if (next === undefined) return 'current';
  return caRotationAction(current, true, now) === 'activate' ? 'next' : 'current';
}

/**
 * The next time (after `now`) at which providerCaStep or signingGeneration changes its
 * answer; undefined when it is already due. The service sleeps until then or its check
 * period, whichever is sooner.
 */
export function nextCaEvent(
  current: Validity,
  next: Validity | undefined,
  now: number,
): number | undefined {
  const plan = caRotationPlan(current);
  const times = next === undefined ? [plan.prepareNextAt] : [plan.activateNextAt, current.notAfter];
  const ahead = times.filter((t) => t > now);
  return ahead.length > 0 ? Math.min(...ahead) : undefined;
}
