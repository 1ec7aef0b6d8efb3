/**
 * Keeps the host's churn history (churn-stats.ts) in <data>/churn.json: loaded at start,
 * written once a minute while the agent runs and at shutdown, so a restart keeps the last
 * 24 hours. A lost or unreadable file only loses history.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../../../common/fs/atomic-file.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { Clock } from '../../../common/time/clock.ts';
import { ChurnStats, MINUTE_MS, type VmChurn } from './churn-stats.ts';

export const CHURN_FILE = 'churn.json';

export interface ChurnKeeper {
  readonly stats: ChurnStats;
  /** A VM's churn now (churn-stats.ts `snapshot`). */
  snapshot(vm: string): VmChurn | undefined;
  /** Writes the file every minute until the signal aborts. */
  run(signal: AbortSignal): Promise<void>;
  save(): void;
}

export function openChurnStats(o: {
  dataDir: string;
  clock: Clock;
  log: Logger;
  /** The bucket length: a minute except on a development host (`--dev-churn-bucket`). */
  bucketMs?: number;
}): ChurnKeeper {
  const path = join(o.dataDir, CHURN_FILE);
  const bucketMs = o.bucketMs ?? MINUTE_MS;
  let stats = new ChurnStats(bucketMs);
  try {
    if (existsSync(path)) {
      // History counted in another bucket length is not read (churn-stats.ts fromJSON).
      const body: unknown = JSON.parse(readFileSync(path, 'utf8'));
      stats = ChurnStats.fromJSON(body, o.clock.now(), bucketMs);
    }
  } catch (e) {
    o.log.warn({ err: e, path }, 'unreadable churn history; starting afresh');
  }
  const save = (): void => {
    try {
      writeFileAtomicSync(path, JSON.stringify(stats.toJSON()));
    } catch (e) {
      o.log.warn({ err: e, path }, 'cannot write the churn history');
    }
  };
  return {
    stats,
    save,
    snapshot: (vm) => stats.snapshot(vm, o.clock.now()),
    async run(signal) {
      while (!signal.aborted) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, MINUTE_MS);
          signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
        });
        save();
      }
    },
  };
}
