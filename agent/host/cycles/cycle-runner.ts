/**
 * The cycle loop of one protected, running VM (R16): cuts a crash-consistent recovery point
 * every copy frequency and, on the app-consistent schedule, freezes the guest first. What is
 * due when comes from the pure decideCut (domain/schedule.ts); this file only sequences I/O.
 *
 * App-consistent cut:
 *   1. ask the guest to freeze, waiting at most freezeTimeoutMs for its reply;
 *   2. if it froze and its self-thaw deadline has not passed, cut app-consistent; otherwise cut
 *      crash-consistent and record why in freezeFailed;
 *   3. thaw the guest (also after a late or failed freeze: a late freeze must be undone).
 *
 * Cuts are serialised: a manual cut and a scheduled one never overlap.
 * States: idle (created) → running (run() looping) → stopped (shutdown() or signal).
 */
import type { GuestAgentChannel } from '../vm/guest-agent.ts';
import type { RecoveryPointRecord, VmJournal } from '../journal/types.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { Clock } from '../../../common/time/clock.ts';
import { decideCut, type CutHistory, type CutKind, type CutSchedule } from './domain/schedule.ts';
import type { PointIndex } from './point-index.ts';

export type CycleRunnerState = 'idle' | 'running' | 'stopped';

export interface CycleRunnerOptions {
  readonly journal: Pick<VmJournal, 'cut' | 'state'>;
  readonly guest: Pick<GuestAgentChannel, 'freeze' | 'thaw'>;
  readonly points: PointIndex;
  readonly schedule: CutSchedule;
  /** How long to wait for the guest's freeze reply. @default 10000 */
  readonly freezeTimeoutMs: number;
  readonly clock: Clock;
  readonly log: Logger;
  /** Waits `ms` or until the signal aborts; injectable so tests need no real timers. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export interface CycleRunner {
  readonly state: CycleRunnerState;
  run(signal: AbortSignal): Promise<void>;
  shutdown(): Promise<void>;
  /** Cuts now (outside the schedule, which then counts from this cut). */
  cutNow(kind: CutKind): Promise<RecoveryPointRecord>;
}

/** After a failed cut, wait this long (or one copy frequency if shorter) before retrying. */
const RETRY_MS = 5000;

function realSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal.addEventListener('abort', done, { once: true });
  });
}

export function createCycleRunner(opts: CycleRunnerOptions): CycleRunner {
  const sleep = opts.sleep ?? realSleep;
  const since = opts.clock.now();
  const stop = new AbortController();
  let state: CycleRunnerState = 'idle';
  let queue: Promise<unknown> = Promise.resolve();
  let loop: Promise<void> | undefined;

  function history(): CutHistory {
    const points = opts.points.list();
    const last = points[points.length - 1];
    const lastApp = points.findLast((p) => p.type === 'app-consistent' || p.freezeFailed);
    return { since, lastCutAt: last?.time, lastAppAttemptAt: lastApp?.time };
  }

  async function appConsistentCut(): Promise<RecoveryPointRecord> {
    const freeze = await opts.guest.freeze(opts.freezeTimeoutMs);
    try {
      if (freeze.ok && opts.clock.now() < freeze.thawDeadline) {
        return await opts.journal.cut({ type: 'app-consistent' });
      }
      const freezeFailed = freeze.ok ? 'the guest thawed itself before the cut' : freeze.error;
      opts.log.warn({ freezeFailed }, 'app-consistent cut taken crash-consistent');
      return await opts.journal.cut({ type: 'crash-consistent', freezeFailed });
    } finally {
      if (freeze.id !== undefined) await opts.guest.thaw(freeze.id);
    }
  }

  function cutNow(kind: CutKind): Promise<RecoveryPointRecord> {
    const next = queue.then(async () => {
      const point =
        kind === 'app-consistent'
          ? await appConsistentCut()
          : await opts.journal.cut({ type: 'crash-consistent' });
      opts.points.append(point);
      opts.log.info({ point }, 'recovery point cut');
      return point;
    });
    queue = next.catch(() => undefined);
    return next;
  }

  async function cycle(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const now = opts.clock.now();
      if (opts.journal.state === 'resync-required') {
        // No cut can succeed until a resync (the journal says so once, in its own log).
        await sleep(opts.schedule.copyFrequencyMs, signal);
        continue;
      }
      const d = decideCut(opts.schedule, history(), now);
      if (d.due === 'none') {
        await sleep(d.at - now, signal);
        continue;
      }
      try {
        await cutNow(d.due);
      } catch (e) {
        opts.log.error({ err: e }, 'scheduled cut failed; retrying');
        await sleep(Math.min(RETRY_MS, opts.schedule.copyFrequencyMs), signal);
      }
    }
  }

  return {
    get state() {
      return state;
    },
    cutNow,
    async run(signal: AbortSignal): Promise<void> {
      state = 'running';
      const both = AbortSignal.any([signal, stop.signal]);
      loop = cycle(both);
      await loop;
      state = 'stopped';
    },
    async shutdown(): Promise<void> {
      stop.abort();
      await loop;
      await queue;
      state = 'stopped';
    },
  };
}
