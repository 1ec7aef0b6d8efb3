/**
 * The host's replication bandwidth cap at run time (R22): bandwidth.ts's scheduler with real
 * timers, its setting kept in <data>/bandwidth.json (a restart keeps it), and how long each
 * VM's replication waited for the cap lately (the inventory reports it, so the item shows
 * that the cap delays its cycles). Senders call `pace(vm)` before each chunk they send: the
 * ship stream, the initial copy and the resync.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../../../common/fs/atomic-file.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { Clock } from '../../../common/time/clock.ts';
import {
  BandwidthScheduler,
  UNLIMITED,
  describeSetting,
  type BandwidthSetting,
  type Waiter,
} from './bandwidth.ts';

export const BANDWIDTH_FILE = 'bandwidth.json';
/** The span `waitedMs` covers. */
export const WAIT_SPAN_MS = 60_000;

/** Waits for the cap before `bytes` go out for a VM. */
export type Pace = (bytes: number) => Promise<void>;

export class HostBandwidth {
  private readonly scheduler: BandwidthScheduler;
  private readonly pending = new Map<number, { resolve(): void; reject(e: unknown): void }>();
  private timer: NodeJS.Timeout | undefined;
  /** Per VM: [end of a wait (ms), how long it waited], inside the last WAIT_SPAN_MS. */
  private readonly waits = new Map<string, Array<[number, number]>>();

  constructor(
    private readonly o: { dataDir?: string; clock: Clock; log: Logger },
    initial?: BandwidthSetting,
  ) {
    this.scheduler = new BandwidthScheduler(initial ?? this.load(), o.clock.now());
  }

  get setting(): BandwidthSetting {
    return this.scheduler.current;
  }

  /** Bytes per second in force now; null = unlimited. */
  rateNow(): number | null {
    return this.scheduler.rateAt(this.o.clock.now());
  }

  /** Stores and applies a new setting (waiters are re-polled under it). */
  set(setting: BandwidthSetting): void {
    if (this.o.dataDir !== undefined) {
      writeFileAtomicSync(
        join(this.o.dataDir, BANDWIDTH_FILE),
        JSON.stringify({ version: 1, ...setting }),
      );
    }
    this.scheduler.configure(setting, this.o.clock.now());
    this.o.log.info({ bandwidth: describeSetting(setting) }, 'replication bandwidth set');
    this.kick();
  }

  /** A function that waits for the cap before each chunk of `vm`'s replication. */
  pacer(vm: string, signal?: AbortSignal): Pace {
    return (bytes) => this.acquire(vm, bytes, signal);
  }

  acquire(vm: string, bytes: number, signal?: AbortSignal): Promise<void> {
    if (bytes <= 0) return Promise.resolve();
    const now = this.o.clock.now();
    if (this.scheduler.rateAt(now) === null && this.scheduler.waiting === 0) {
      // Unlimited and nobody waits: no queue, no timer (still counted per window).
      this.scheduler.request(vm, bytes, now);
      this.scheduler.poll(now);
      return Promise.resolve();
    }
    const w: Waiter = this.scheduler.request(vm, bytes, now);
    const onAbort = (): void => {
      this.scheduler.cancel(w.id);
      this.pending.get(w.id)?.reject(signal?.reason);
      this.pending.delete(w.id);
    };
    // The listener goes with the waiter: a long-lived signal (a sender's) must not collect one
    // per chunk shipped.
    const done = new Promise<void>((resolve, reject) =>
      this.pending.set(w.id, {
        resolve: () => (signal?.removeEventListener('abort', onAbort), resolve()),
        reject: (e: unknown) => (signal?.removeEventListener('abort', onAbort), reject(e)),
      }),
    );
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    this.kick();
    return done;
  }

  /** ms `vm`'s replication waited for the cap in the last WAIT_SPAN_MS. */
  waitedMs(vm: string): number {
    const since = this.o.clock.now() - WAIT_SPAN_MS;
    const list = (this.waits.get(vm) ?? []).filter(([end]) => end >= since);
    if (list.length === 0) this.waits.delete(vm);
    else this.waits.set(vm, list);
    return list.reduce((n, [, ms]) => n + ms, 0);
  }

  /** Bytes granted per window label since the agent started. */
  grantedByWindow(): ReadonlyMap<string, number> {
    return this.scheduler.grantedByWindow;
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private kick(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.o.clock.now();
    const { granted, waitMs } = this.scheduler.poll(now);
    for (const g of granted) {
      if (g.waitedMs > 0) {
        const list = this.waits.get(g.waiter.vm) ?? [];
        list.push([now, g.waitedMs]);
        this.waits.set(g.waiter.vm, list);
      }
      this.pending.get(g.waiter.id)?.resolve();
      this.pending.delete(g.waiter.id);
    }
    if (waitMs !== null) this.timer = setTimeout(() => this.kick(), waitMs);
  }

  private load(): BandwidthSetting {
    if (this.o.dataDir === undefined) return UNLIMITED;
    const path = join(this.o.dataDir, BANDWIDTH_FILE);
    if (!existsSync(path)) return UNLIMITED;
    try {
      const body = JSON.parse(readFileSync(path, 'utf8')) as Partial<BandwidthSetting>;
      return {
        limit: typeof body.limit === 'number' ? body.limit : null,
        windows: Array.isArray(body.windows) ? body.windows : [],
        priorities: body.priorities ?? {},
      };
    } catch (e) {
      this.o.log.warn({ err: e, path }, 'unreadable bandwidth setting; replication is unlimited');
      return UNLIMITED;
    }
  }
}
