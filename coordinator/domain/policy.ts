/**
 * Replication policies (R11) and their association with cloud pairs (R6, R12). Pure.
 *
 * `validatePolicy` turns loose input (CLI strings or API JSON values) into a frozen, normalized
 * Policy, refusing the first bad field with SS_BAD_INPUT (exit 2, nothing stored) and a message
 * that names the allowed values. Fields are checked in the order of R11.
 *
 * Bounds and defaults, and why:
 * - retentionHours 0–24: Hyper-V Replica keeps at most 24 additional hourly recovery points, and
 *   the original's policy page offers the same range. 0 keeps only the latest point. @default 2
 * - appConsistentHours 0 (off) or 1–12, and below retentionHours when on (an app-consistent
 *   point must survive until the next one is made). @default 0 — quiescing costs the guest, so
 *   it is asked for, not assumed.
 * - copyFrequency @default '5m' (the original's default); auth @default 'certificate';
 *   port @default 8084 for certificates, 8083 for Kerberos-style tickets.
 * - compression @default on (the WAN is usually the bottleneck); deleteReplicaOnDisable
 *   @default off (never delete data unless asked).
 * - initial @default network; `scheduled:ISO-TIME` needs an explicit zone (Z or ±hh:mm) so the
 *   time does not depend on the coordinator's time zone, and must be in the future.
 * - hostVersion: free text as the site file's host osVersion; null means "pin at the first
 *   association" (checkAssociation returns the version to store).
 */
import { SecondsiteError, badInput } from '../../common/errors/errors.ts';

export const COPY_FREQUENCIES = ['30s', '5m', '15m'] as const;
export type CopyFrequency = (typeof COPY_FREQUENCIES)[number];
export const COPY_FREQUENCY_MS: Readonly<Record<CopyFrequency, number>> = Object.freeze({
  '30s': 30_000,
  '5m': 300_000,
  '15m': 900_000,
});

export const AUTH_TYPES = ['certificate', 'kerberos'] as const;
export type AuthType = (typeof AUTH_TYPES)[number];
export const DEFAULT_PORT: Readonly<Record<AuthType, number>> = Object.freeze({
  certificate: 8084,
  kerberos: 8083,
});

export const MAX_RETENTION_HOURS = 24;
export const MAX_APP_CONSISTENT_HOURS = 12;
const NAME_MAX = 80;

export type InitialReplication =
  | { readonly method: 'network' }
  | { readonly method: 'scheduled'; readonly at: string }
  | { readonly method: 'offline'; readonly exportPath: string; readonly importPath: string };

export interface Policy {
  readonly name: string;
  readonly hostVersion: string | null;
  readonly auth: AuthType;
  readonly port: number;
  readonly copyFrequency: CopyFrequency;
  readonly retentionHours: number;
  /** 0 = off. */
  readonly appConsistentHours: number;
  readonly compression: boolean;
  readonly deleteReplicaOnDisable: boolean;
  readonly initial: InitialReplication;
}

/** Loose input: the CLI passes strings, the API may pass numbers and booleans. */
export interface PolicyInput {
  readonly name?: unknown;
  readonly hostVersion?: unknown;
  readonly auth?: unknown;
  readonly port?: unknown;
  readonly copyFrequency?: unknown;
  readonly retentionHours?: unknown;
  readonly appConsistentHours?: unknown;
  readonly compression?: unknown;
  readonly deleteReplicaOnDisable?: unknown;
  readonly initial?: unknown;
  readonly exportPath?: unknown;
  readonly importPath?: unknown;
}

const printable = (s: string): boolean => !/\p{Cc}/u.test(s);

function text(field: string, v: unknown, max: number, extra = ''): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max || v.trim() !== v) {
    throw badInput(field, `must be 1-${max} characters without leading or trailing spaces${extra}`);
  }
  if (!printable(v)) throw badInput(field, 'must not contain control characters');
  return v;
}

function oneOf<T extends string>(field: string, v: unknown, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  throw badInput(field, `"${String(v)}" is not one of ${allowed.join(', ')}`, { allowed });
}

/** A whole number from a number or a decimal string ("12"); anything else is refused. */
function integer(field: string, v: unknown, min: number, max: number, allowed: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw badInput(field, `"${String(v)}" is not allowed: ${allowed}`, { min, max });
  }
  return n;
}

function onOff(field: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (v === true || v === 'on') return true;
  if (v === false || v === 'off') return false;
  throw badInput(field, `"${String(v)}" is not one of on, off`, { allowed: ['on', 'off'] });
}

const ISO_ZONED =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2})$/;

/** Epoch ms of a zoned ISO 8601 time, or null. Date.parse alone accepts Feb 30 and 24:00. */
export function parseZonedIso(s: string): number | null {
  const m = ISO_ZONED.exec(s);
  if (m === null) return null;
  const [y, mo, d, h, mi, sec] = m.slice(1).map((x) => Number(x ?? 0)) as number[];
  const day = new Date(Date.UTC(y!, mo! - 1, d!));
  if (day.getUTCMonth() !== mo! - 1 || day.getUTCDate() !== d!) return null;
  if (h! > 23 || mi! > 59 || sec! > 59) return null;
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? null : ms;
}

const INITIAL_ALLOWED = 'network, scheduled:ISO-TIME (a future time with a zone), offline';

function initialOf(input: PolicyInput, now: number): InitialReplication {
  const v = input.initial ?? 'network';
  const offline = v === 'offline';
  for (const f of ['exportPath', 'importPath'] as const) {
    if (!offline && input[f] !== undefined) {
      throw badInput(f, 'is only allowed with initial replication "offline"');
    }
  }
  if (v === 'network') return { method: 'network' };
  if (offline) {
    return {
      method: 'offline',
      exportPath: text('exportPath', input.exportPath, 4096, '; required for offline'),
      importPath: text('importPath', input.importPath, 4096, '; required for offline'),
    };
  }
  if (typeof v === 'string' && v.startsWith('scheduled:')) {
    const at = parseZonedIso(v.slice('scheduled:'.length));
    if (at === null) {
      throw badInput(
        'initial',
        `"${v}" has no valid ISO time with a zone; allowed: ${INITIAL_ALLOWED}`,
      );
    }
    if (at <= now) {
      throw badInput('initial', `${new Date(at).toISOString()} is not in the future`);
    }
    return { method: 'scheduled', at: new Date(at).toISOString() };
  }
  throw badInput('initial', `"${String(v)}" is not one of ${INITIAL_ALLOWED}`);
}

/** The R11 settings a policy keeps in force while in use (all but name, host version, initial). */
type Settings = Pick<
  Policy,
  | 'auth'
  | 'port'
  | 'copyFrequency'
  | 'retentionHours'
  | 'appConsistentHours'
  | 'compression'
  | 'deleteReplicaOnDisable'
>;

/** Validates the settings of `input` (create and update share it), defaults filled in. */
function validateSettings(input: PolicyInput): Settings {
  const auth = oneOf('auth', input.auth, AUTH_TYPES, 'certificate');
  const port =
    input.port === undefined
      ? DEFAULT_PORT[auth]
      : integer('port', input.port, 1, 65535, 'a TCP port 1-65535 (default 8084, Kerberos 8083)');
  const copyFrequency = oneOf('copyFrequency', input.copyFrequency, COPY_FREQUENCIES, '5m');
  const retentionHours =
    input.retentionHours === undefined
      ? 2
      : integer(
          'retentionHours',
          input.retentionHours,
          0,
          MAX_RETENTION_HOURS,
          `a whole number of hours 0-${MAX_RETENTION_HOURS}`,
        );
  const appConsistentHours =
    input.appConsistentHours === undefined
      ? 0
      : integer(
          'appConsistentHours',
          input.appConsistentHours,
          0,
          MAX_APP_CONSISTENT_HOURS,
          `0 (off) or a whole number of hours 1-${MAX_APP_CONSISTENT_HOURS}`,
        );
  if (appConsistentHours > 0 && appConsistentHours >= retentionHours) {
    throw badInput(
      'appConsistentHours',
      `${appConsistentHours} must be less than retentionHours (${retentionHours}), or 0 (off)`,
      { retentionHours },
    );
  }
  return {
    auth,
    port,
    copyFrequency,
    retentionHours,
    appConsistentHours,
    compression: onOff('compression', input.compression, true),
    deleteReplicaOnDisable: onOff('deleteReplicaOnDisable', input.deleteReplicaOnDisable, false),
  };
}

/** Validates every R11 field; `now` decides whether a scheduled start is in the future. */
export function validatePolicy(input: PolicyInput, now: number): Policy {
  const name = text('name', input.name, NAME_MAX);
  if (name.includes('/')) throw badInput('name', 'must not contain "/"');
  const hostVersion =
    input.hostVersion === undefined ? null : text('hostVersion', input.hostVersion, 40);
  const settings = validateSettings(input);
  return Object.freeze({
    name,
    hostVersion,
    ...settings,
    initial: Object.freeze(initialOf(input, now)),
  });
}

/**
 * What `policy update` may change, on a policy in use or not: every setting that the hosts
 * can take over without starting replication afresh. auth and port move replication to the
 * other channel (the hosts keep their replication state, docs/security.md "Channel choice");
 * copyFrequency and appConsistentHours re-schedule the source's cycles; retentionHours makes
 * the replica keep points longer or shorter; compression applies from the next chunk;
 * deleteReplicaOnDisable is the coordinator's alone. Not changeable: the name (the key), the
 * host version (pinned by the hosts already associated: checkAssociation's rule) and the
 * initial replication method (it only applies when a VM is enabled; create another policy).
 */
export const UPDATABLE_FIELDS = [
  'auth',
  'port',
  'copyFrequency',
  'retentionHours',
  'appConsistentHours',
  'compression',
  'deleteReplicaOnDisable',
] as const;
export type UpdatableField = (typeof UPDATABLE_FIELDS)[number];
export type PolicyUpdateInput = { readonly [K in UpdatableField]?: unknown };

/** Settings the hosts of protected items hold (pair_vm carries them); the rest stays here. */
export const HOST_FIELDS: readonly UpdatableField[] = UPDATABLE_FIELDS.filter(
  (f) => f !== 'deleteReplicaOnDisable',
);

export interface PolicyUpdate {
  readonly policy: Policy;
  /** Fields whose value differs from the current policy, in UPDATABLE_FIELDS order. */
  readonly changed: readonly UpdatableField[];
  /** Some field the hosts hold changed: protected items must be paired again. */
  readonly repair: boolean;
}

/**
 * The policy after an update (pure), validated by the same rules as at create, on the merged
 * settings (so appConsistentHours < retentionHours holds across an update of either). A new
 * auth without a port takes that auth's default port, as at create. Giving no field is bad
 * input; giving the current values changes nothing (`changed` empty).
 */
export function updatePolicy(current: Policy, input: PolicyUpdateInput): PolicyUpdate {
  const given = UPDATABLE_FIELDS.filter((f) => input[f] !== undefined);
  if (given.length === 0) {
    throw badInput(
      'policy',
      `nothing to update; give at least one of ${UPDATABLE_FIELDS.join(', ')}`,
    );
  }
  const authChanges = input.auth !== undefined && input.auth !== current.auth;
  const merged: PolicyInput = {
    ...Object.fromEntries(UPDATABLE_FIELDS.map((f) => [f, current[f]])),
    ...Object.fromEntries(given.map((f) => [f, input[f]])),
    ...(authChanges && input.port === undefined ? { port: undefined } : {}),
  };
  const settings = validateSettings(merged);
  const policy: Policy = Object.freeze({ ...current, ...settings });
  const changed = UPDATABLE_FIELDS.filter((f) => policy[f] !== current[f]);
  return Object.freeze({
    policy,
    changed,
    repair: changed.some((f) => HOST_FIELDS.includes(f)),
  });
}

/** A cloud as association sees it: its current policy and partner, if any (`cloud list`). */
export interface CloudAssociationView {
  readonly server: string;
  readonly name: string;
  readonly policy: string | null;
  /** The other cloud of its pair, SERVER/CLOUD, and this cloud's side of the pair. */
  readonly pairedWith: { readonly server: string; readonly name: string } | null;
  readonly role: 'primary' | 'secondary' | null;
}

export interface HostOsView {
  readonly name: string;
  /** As the site file's `osVersion`; null when the host reports none. */
  readonly osVersion: string | null;
}

export interface AssociationResult {
  /** The host version the policy holds from now on (pins a policy created without one). */
  readonly hostVersion: string | null;
  /** True when this exact pair was already associated with the policy (nothing to store). */
  readonly alreadyAssociated: boolean;
}

const label = (c: { server: string; name: string }): string => `${c.server}/${c.name}`;
const same = (a: { server: string; name: string }, b: { server: string; name: string }) =>
  a.server.toLowerCase() === b.server.toLowerCase() && a.name === b.name;

function checkCloudFree(
  policy: Policy,
  cloud: CloudAssociationView,
  role: 'primary' | 'secondary',
  partner: CloudAssociationView,
): boolean {
  if (cloud.policy === null) return false;
  if (cloud.policy !== policy.name) {
    throw new SecondsiteError(
      'SS_CONFLICT',
      `cloud ${label(cloud)} is already associated with policy "${cloud.policy}"; ` +
        'a cloud belongs to one policy',
      { cloud: label(cloud), policy: cloud.policy },
    );
  }
  if (cloud.role !== role || cloud.pairedWith === null || !same(cloud.pairedWith, partner)) {
    const other = cloud.pairedWith === null ? 'another cloud' : label(cloud.pairedWith);
    throw new SecondsiteError(
      'SS_CONFLICT',
      `cloud ${label(cloud)} is already paired with ${other} under policy "${policy.name}"`,
      { cloud: label(cloud), pairedWith: other },
    );
  }
  return true;
}

function checkHostVersions(
  policy: Policy,
  hosts: readonly (HostOsView & { cloud: string })[],
): string | null {
  const versionOf = (h: HostOsView): string => h.osVersion ?? '(none reported)';
  const wanted = policy.hostVersion ?? (hosts[0] === undefined ? null : versionOf(hosts[0]));
  const odd = hosts.filter((h) => versionOf(h) !== wanted);
  if (odd.length === 0) return policy.hostVersion ?? hosts[0]?.osVersion ?? null;
  const byVersion = new Map<string, string[]>();
  for (const h of hosts) {
    byVersion.set(versionOf(h), [...(byVersion.get(versionOf(h)) ?? []), `${h.cloud}:${h.name}`]);
  }
  const listing = [...byVersion].map(([v, hs]) => `${v}: ${hs.join(', ')}`).join('; ');
  throw new SecondsiteError(
    'SS_HOST_VERSION_MISMATCH',
    `all hosts under policy "${policy.name}" must run ${wanted ?? 'one OS version'}; ` +
      `found ${listing}. Create another policy for the other hosts`,
    { policy: policy.name, wanted, hosts: odd.map((h) => `${h.cloud}:${h.name}`) },
  );
}

/**
 * R6/R12: may `primary` be protected by `secondary` under `policy`? Two different clouds, on two
 * servers or on one server; neither belongs to another policy or pair; every host of both
 * clouds runs the policy's host OS version. Hosts of clouds associated earlier were checked
 * then, and the pinned `policy.hostVersion` carries that result forward.
 */
export function checkAssociation(
  policy: Policy,
  primary: CloudAssociationView,
  secondary: CloudAssociationView,
  hostsOf: (cloud: CloudAssociationView) => readonly HostOsView[],
): AssociationResult {
  if (same(primary, secondary)) {
    throw badInput(
      'targetCloud',
      `${label(secondary)} is also the source cloud; protect into another cloud ` +
        '(on a second server, or a second cloud of this server)',
    );
  }
  const p = checkCloudFree(policy, primary, 'primary', secondary);
  const s = checkCloudFree(policy, secondary, 'secondary', primary);
  const hosts = [primary, secondary].flatMap((c) =>
    hostsOf(c).map((h) => ({ ...h, cloud: label(c) })),
  );
  const hostVersion = checkHostVersions(policy, hosts);
  return Object.freeze({ hostVersion, alreadyAssociated: p && s });
}
