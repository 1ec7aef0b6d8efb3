/**
 * Replication bandwidth control (R22), the pure part: a host's cap with optional time windows,
 * per-VM priorities, and a token bucket that grants bytes to waiting senders in priority
 * order. No I/O and no timers: callers pass `now` (ms) and the local minute of the day;
 * bandwidth-limiter.ts runs it with real timers and keeps the setting in a file.
 *
 * The setting and its text forms are common/wire/bandwidth-setting.ts's (the coordinator
 * parses the same). Windows are in the host's local time.
 *
 * The bucket: tokens refill at the current rate up to one second's worth (the burst); a grant
 * needs a non-negative balance and may take it below zero (a chunk larger than the burst), so
 * over any span T the bytes granted stay under rate × T + burst + one chunk. Waiters are served
 * high before normal before low, first come first served within a priority: while the head
 * cannot be granted, nobody behind it is.
 */
import {
  PRIORITIES,
  formatWindow,
  type BandwidthSetting,
  type BandwidthWindow,
  type Priority,
} from '../../../common/wire/bandwidth-setting.ts';

export {
  MB,
  PRIORITIES,
  UNLIMITED,
  describeSetting,
  formatWindow,
  parseClock,
  parseRate,
  parseWindow,
  type BandwidthSetting,
  type BandwidthWindow,
  type Priority,
} from '../../../common/wire/bandwidth-setting.ts';

export function inWindow(w: BandwidthWindow, minute: number): boolean {
  return w.start < w.end
    ? minute >= w.start && minute < w.end
    : minute >= w.start || minute < w.end;
}

/** The window in force at `minute` (local minute of the day), or undefined for the default. */
export function windowAt(s: BandwidthSetting, minute: number): BandwidthWindow | undefined {
  return s.windows.find((w) => inWindow(w, minute));
}

/** Bytes per second allowed at `minute`; null = unlimited. */
export function limitAt(s: BandwidthSetting, minute: number): number | null {
  const w = windowAt(s, minute);
  return w === undefined ? s.limit : w.bytesPerSecond;
}

/** A label for the accounting: the window in force, or "default". */
export function windowLabel(s: BandwidthSetting, minute: number): string {
  const w = windowAt(s, minute);
  return w === undefined ? 'default' : formatWindow(w);
}

export function priorityOf(s: BandwidthSetting, vm: string): Priority {
  return s.priorities[vm] ?? 'normal';
}

/** The local minute of the day of `ms` (the host's time zone). */
export function localMinuteOfDay(ms: number): number {
  const d = new Date(ms);
  return d.getHours() * 60 + d.getMinutes();
}

export interface Waiter {
  readonly id: number;
  readonly vm: string;
  readonly priority: Priority;
  readonly bytes: number;
  /** When it started waiting (ms). */
  readonly since: number;
}

export interface Grant {
  readonly waiter: Waiter;
  /** How long it waited (ms). */
  readonly waitedMs: number;
}

/**
 * The token bucket with its queue. `request` then `poll` (again after `waitMs`) until the
 * waiter is in a poll's `granted`.
 */
export class BandwidthScheduler {
  private tokens = 0;
  private last: number;
  private rate: number | null = null;
  private nextId = 1;
  private readonly queue: Waiter[] = [];
  /** Bytes granted, by window label ("default" or "08:00-18:00=20 MB/s"). */
  readonly grantedByWindow = new Map<string, number>();
  /** Bytes granted, by VM. */
  readonly grantedByVm = new Map<string, number>();

  constructor(
    private setting: BandwidthSetting,
    now: number,
    private readonly minuteOf: (ms: number) => number = localMinuteOfDay,
    /** Seconds of tokens the bucket holds at most. @default 1 */
    private readonly burstSeconds = 1,
  ) {
    this.last = now;
    this.rate = limitAt(setting, minuteOf(now));
    this.tokens = this.burst();
  }

  get current(): BandwidthSetting {
    return this.setting;
  }

  /** The rate in force now (bytes/s; null = unlimited). */
  rateAt(now: number): number | null {
    return limitAt(this.setting, this.minuteOf(now));
  }

  /** A new setting applies from `now` on (tokens kept, capped by the new burst). */
  configure(setting: BandwidthSetting, now: number): void {
    this.refill(now);
    this.setting = setting;
    this.rate = limitAt(setting, this.minuteOf(now));
    this.tokens = Math.min(this.tokens, this.burst());
  }

  /** Queues `bytes` for `vm` (its priority from the setting). */
  request(vm: string, bytes: number, now: number): Waiter {
    const w: Waiter = {
      id: this.nextId++,
      vm,
      priority: priorityOf(this.setting, vm),
      bytes,
      since: now,
    };
    // After every waiter of the same or a higher priority.
    const rank = PRIORITIES.indexOf(w.priority);
    const at = this.queue.findIndex((q) => PRIORITIES.indexOf(q.priority) > rank);
    if (at < 0) this.queue.push(w);
    else this.queue.splice(at, 0, w);
    return w;
  }

  /** Drops a waiter (its sender was cancelled). */
  cancel(id: number): void {
    const i = this.queue.findIndex((q) => q.id === id);
    if (i >= 0) this.queue.splice(i, 1);
  }

  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Grants what the tokens allow, in queue order; `waitMs` is when to poll again (null: the
   * queue is empty).
   */
  poll(now: number): { granted: Grant[]; waitMs: number | null } {
    this.refill(now);
    const granted: Grant[] = [];
    while (this.queue.length > 0) {
      const head = this.queue[0] as Waiter;
      if (this.rate !== null && this.tokens < 0) break;
      this.queue.shift();
      if (this.rate !== null) this.tokens -= head.bytes;
      const label = windowLabel(this.setting, this.minuteOf(now));
      this.grantedByWindow.set(label, (this.grantedByWindow.get(label) ?? 0) + head.bytes);
      this.grantedByVm.set(head.vm, (this.grantedByVm.get(head.vm) ?? 0) + head.bytes);
      granted.push({ waiter: head, waitedMs: now - head.since });
    }
    if (this.queue.length === 0) return { granted, waitMs: null };
    const rate = this.rate ?? 1;
    // Until the balance is back at zero; at least 1 ms; at most a minute (a window may open).
    const ms = Math.ceil((-this.tokens / rate) * 1000);
    return { granted, waitMs: Math.min(60_000, Math.max(1, ms)) };
  }

  private burst(): number {
    return this.rate === null ? 0 : this.rate * this.burstSeconds;
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    const rate = limitAt(this.setting, this.minuteOf(now));
    if (rate !== this.rate) {
      // A window opened or closed: the new rate starts from an even balance.
      this.rate = rate;
      this.tokens = 0;
      return;
    }
    if (rate === null) return;
    this.tokens = Math.min(this.burst(), this.tokens + (rate * elapsed) / 1000);
  }
}
