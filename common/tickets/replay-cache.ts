/**
 * The replay cache of a ticket server: every authenticator it accepted, until it is too old to
 * pass the 5-minute skew check anyway (so the cache holds at most 10 minutes of entries).
 *
 * Restart: an authenticator accepted just before a restart is still inside its skew window
 * after it, so a server that forgot its cache would accept it again. Two ways out (RFC 4120
 * §3.2.3): persist the cache, or refuse every authenticator for one skew window after start.
 * secondsite persists (a host that restarts must not stall every VM's replication for 5
 * minutes, longer than the shortest copy frequency of 30 s): each accepted entry is appended
 * and fsynced by the store (replay-file.ts) before the server answers. When the persisted
 * cache cannot be trusted (missing after a crash that lost it, unreadable, torn), the cache
 * starts `untrusted` and falls back to refusing everything until start + skew: fail closed.
 *
 * Pure: the store and the time come in as parameters.
 */
import { createHash } from 'node:crypto';
import { SecondsiteError } from '../errors/errors.ts';

/** Kerberos' default and the issue's limit: clocks may differ by at most 5 minutes. */
export const MAX_SKEW_MS = 5 * 60 * 1000;

export interface ReplayEntry {
  /** SHA-256 of (client, server, ctime µs, seq): what identifies one authenticator. */
  readonly digest: Buffer;
  /** ms since the epoch after which the skew check alone refuses this authenticator. */
  readonly expiresAt: number;
}

/** Where accepted entries are kept across restarts. */
export interface ReplayStore {
  /**
   * Entries accepted before, or undefined when the store cannot vouch for them (lost, torn,
   * unreadable): the cache then refuses everything for one skew window.
   */
  load(): ReplayEntry[] | undefined;
  /** Records one entry durably before it returns (the server answers only afterwards). */
  append(entry: ReplayEntry): void;
  /** Replaces the whole store with `entries` (pruning); may be a no-op. */
  rewrite?(entries: ReplayEntry[]): void;
}

export function replayDigest(client: string, server: string, ctimeUs: number, seq: number): Buffer {
  return createHash('sha256').update(`${client}\n${server}\n${ctimeUs}\n${seq}`, 'utf8').digest();
}

export class ReplayCache {
  private readonly seen = new Map<string, number>();
  /** Until when every authenticator is refused (0: the cache was loaded and is trusted). */
  private readonly refuseUntil: number;

  constructor(
    private readonly store: ReplayStore,
    startedAt: number,
    private readonly skewMs = MAX_SKEW_MS,
  ) {
    const loaded = store.load();
    if (loaded === undefined) {
      this.refuseUntil = startedAt + skewMs;
    } else {
      this.refuseUntil = 0;
      for (const e of loaded) {
        if (e.expiresAt >= startedAt) this.seen.set(e.digest.toString('hex'), e.expiresAt);
      }
      store.rewrite?.(this.entries());
    }
  }

  /** Whether the cache was lost and the server is in its refuse-everything window. */
  warming(now: number): boolean {
    return now < this.refuseUntil;
  }

  /**
   * Records the authenticator or throws SS_REPLAY when it was seen (or the cache was lost less
   * than one skew window ago). `ctimeMs` must already have passed the skew check.
   */
  admit(digest: Buffer, ctimeMs: number, now: number): void {
    if (this.warming(now)) {
      throw new SecondsiteError(
        'SS_REPLAY',
        'this replication port lost its replay cache and refuses tickets for 5 minutes after start',
        { reason: 'replay-cache-warming', retryAfterMs: this.refuseUntil - now },
      );
    }
    this.prune(now);
    const key = digest.toString('hex');
    if (this.seen.has(key)) {
      throw new SecondsiteError('SS_REPLAY', 'this authenticator was already presented', {
        reason: 'replay',
      });
    }
    const expiresAt = ctimeMs + this.skewMs;
    this.store.append({ digest, expiresAt });
    this.seen.set(key, expiresAt);
  }

  get size(): number {
    return this.seen.size;
  }

  private prune(now: number): void {
    let pruned = 0;
    for (const [k, exp] of this.seen) {
      if (exp < now) {
        this.seen.delete(k);
        pruned++;
      }
    }
    // Rewrite the file only when it has become mostly dead entries (amortised O(1) per admit).
    if (pruned > 0 && pruned >= this.seen.size) this.store.rewrite?.(this.entries());
  }

  private entries(): ReplayEntry[] {
    return [...this.seen].map(([k, expiresAt]) => ({ digest: Buffer.from(k, 'hex'), expiresAt }));
  }
}

/** A store that remembers nothing across restarts (tests, and the in-process unit lane). */
export class MemoryReplayStore implements ReplayStore {
  /** undefined: the store was lost (load reports it untrusted). */
  entries: ReplayEntry[] | undefined = [];

  /** A store whose contents were lost, as after a crash that took the file with it. */
  static lost(): MemoryReplayStore {
    const s = new MemoryReplayStore();
    s.entries = undefined;
    return s;
  }

  load(): ReplayEntry[] | undefined {
    return this.entries ? [...this.entries] : undefined;
  }
  append(entry: ReplayEntry): void {
    (this.entries ??= []).push(entry);
  }
  rewrite(entries: ReplayEntry[]): void {
    this.entries = [...entries];
  }
}
