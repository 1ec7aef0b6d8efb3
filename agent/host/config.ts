/**
 * The host agent's settings, compiled once from the command line into a frozen object
 * (STYLE.md rule 6). Every refusal names the flag at fault, so `host start` exits 2 before it
 * touches anything.
 */
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { badInput } from '../../common/errors/errors.ts';
import { parseDuration, parseSize } from '../../common/config/units.ts';
import { MAX_BUCKET_MS, MIN_BUCKET_MS, MINUTE_MS } from './vm/churn-stats.ts';

/** Flags as commander hands them over: strings, booleans, absent. */
export interface HostStartFlags {
  readonly data?: string;
  readonly name?: string;
  readonly provider?: string;
  readonly tokenFile?: string;
  readonly address?: string;
  readonly certPort?: string;
  readonly ticketPort?: string;
  readonly standalone?: boolean;
  readonly freezeTimeout?: string;
  readonly devCopyFrequency?: string;
  readonly devChurnBucket?: string;
  readonly journalCap?: string;
  /** on | off (default on): ship the segment being written while it is written. */
  readonly liveSegments?: string;
  readonly tlsDir?: string;
}

export interface HostConfig {
  /** Absolute path of the data folder. */
  readonly dataDir: string;
  /** The host's name. @default the machine's hostname (standalone only) */
  readonly name: string;
  /** No provider: the local control API only (storage-path demo and tests). */
  readonly standalone: boolean;
  /** The provider to enrol with; the token is needed only until the host is enrolled. */
  readonly provider?: { readonly address: string; readonly tokenFile: string | undefined };
  readonly address?: string;
  /** @default 8084; 0 picks a free port (tests) */
  readonly certPort: number;
  /** ca.pem, cert.pem, key.pem of this host (enrolment fills the default). @default <data>/identity */
  readonly tlsDir: string;
  /** @default 8083 */
  readonly ticketPort: number;
  /** How long a guest may take to freeze. @default 10000 */
  readonly freezeTimeoutMs: number;
  /** Development only: overrides every VM's copy frequency. @default none */
  readonly devCopyFrequencyMs?: number;
  /**
   * Development only: the length of a churn bucket (agent/host/vm/churn-stats.ts), so tests see
   * whole churn windows in seconds; 1 s to 60 s. @default 60000 (a minute)
   */
  readonly churnBucketMs: number;
  /** Cap of a VM's unshipped journal. @default the journal's own default */
  readonly journalCapBytes?: number;
  /**
   * Offer live segments (FEATURE_LIVE_SEGMENTS) to peers. Off: only sealed segments travel,
   * coalesced, which sends fewer bytes when a cycle overwrites much (a narrow link) at the
   * cost of shipping the whole cycle after each cut.
   */
  readonly liveSegments: boolean;
}

function port(flag: string, text: string | undefined, fallback: number, min = 1): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > 65535) throw badInput(flag, `"${text}" is not a port`);
  return n;
}

function enrolment(flags: HostStartFlags): HostConfig['provider'] {
  if (flags.standalone) {
    if (flags.provider || flags.tokenFile) {
      throw badInput('--standalone', 'cannot be used together with --provider or --token-file');
    }
    return undefined;
  }
  if (!flags.name) throw badInput('--name', 'is required (or use --standalone)');
  if (!flags.provider) throw badInput('--provider', 'is required (or use --standalone)');
  if (!/^[^\s:]+:\d+$/.test(flags.provider)) {
    throw badInput('--provider', `"${flags.provider}" is not HOST:PORT`);
  }
  // Whether the token is needed depends on the data folder: enrolment/enrol.ts decides.
  return {
    address: flags.provider,
    tokenFile: flags.tokenFile ? resolve(flags.tokenFile) : undefined,
  };
}

export function compileHostConfig(flags: HostStartFlags): HostConfig {
  if (!flags.data) throw badInput('--data', 'is required');
  const devMs = flags.devCopyFrequency
    ? parseDuration('--dev-copy-frequency', flags.devCopyFrequency)
    : undefined;
  if (devMs !== undefined && devMs < 1000) {
    throw badInput('--dev-copy-frequency', 'must be at least 1s');
  }
  const churnBucketMs = flags.devChurnBucket
    ? parseDuration('--dev-churn-bucket', flags.devChurnBucket)
    : MINUTE_MS;
  if (
    !Number.isInteger(churnBucketMs) ||
    churnBucketMs < MIN_BUCKET_MS ||
    churnBucketMs > MAX_BUCKET_MS
  ) {
    throw badInput('--dev-churn-bucket', 'must be a whole number of ms from 1s to 60s');
  }
  const freezeTimeoutMs = parseDuration('--freeze-timeout', flags.freezeTimeout ?? '10s');
  if (freezeTimeoutMs < 100 || freezeTimeoutMs > 60_000) {
    throw badInput('--freeze-timeout', 'must be between 100ms and 60s');
  }
  const live = flags.liveSegments ?? 'on';
  if (live !== 'on' && live !== 'off') throw badInput('--live-segments', 'must be on or off');
  const provider = enrolment(flags);
  return Object.freeze({
    liveSegments: live === 'on',
    dataDir: resolve(flags.data),
    name: flags.name ?? hostname(),
    standalone: Boolean(flags.standalone),
    provider,
    address: flags.address,
    certPort: port('--cert-port', flags.certPort, 8084, 0),
    tlsDir: resolve(flags.tlsDir ?? join(resolve(flags.data), 'identity')),
    ticketPort: port('--ticket-port', flags.ticketPort, 8083, 0),
    freezeTimeoutMs,
    devCopyFrequencyMs: devMs,
    churnBucketMs,
    journalCapBytes: flags.journalCap ? parseSize('--journal-cap', flags.journalCap) : undefined,
  });
}
