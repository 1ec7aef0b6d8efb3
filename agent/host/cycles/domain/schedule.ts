/**
 * When is the next cut of a protected VM due, and of which kind? A pure function of the
 * schedule, what was cut last, and the time (R16).
 *
 * Rules:
 * - a cut is due `copyFrequencyMs` after the last cut of any kind (or after protection began);
 *   a cut taken late (the agent was down, a freeze took its time) does not cause catch-up
 *   cuts: the next one counts from the late one;
 * - the due cut is app-consistent when `appConsistentMs` > 0 and that long has passed since the
 *   last app-consistent *attempt* (or since protection began). A failed freeze counts as an
 *   attempt, so a guest without a working agent costs one freeze timeout per app-consistent
 *   interval, not one per cycle.
 */

export type CutKind = 'crash-consistent' | 'app-consistent';

export interface CutSchedule {
  readonly copyFrequencyMs: number;
  /** 0: never app-consistent. */
  readonly appConsistentMs: number;
}

export interface CutHistory {
  /** When protection (or this agent's run of it) began: the origin of both intervals. */
  readonly since: number;
  readonly lastCutAt?: number;
  readonly lastAppAttemptAt?: number;
}

export interface CutDecision {
  /** `none`: nothing due yet; look again at `at`. Otherwise: cut this kind now. */
  readonly due: 'none' | CutKind;
  /** When the next cut is due (equal to or before now when one is due). */
  readonly at: number;
}

export function decideCut(schedule: CutSchedule, history: CutHistory, now: number): CutDecision {
  const at = (history.lastCutAt ?? history.since) + schedule.copyFrequencyMs;
  if (now < at) return { due: 'none', at };
  return { due: appDue(schedule, history, now) ? 'app-consistent' : 'crash-consistent', at };
}

function appDue(schedule: CutSchedule, history: CutHistory, now: number): boolean {
  if (schedule.appConsistentMs <= 0) return false;
  return now >= (history.lastAppAttemptAt ?? history.since) + schedule.appConsistentMs;
}
