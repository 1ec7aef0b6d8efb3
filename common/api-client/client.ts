/**
 * The one client of the public REST API (STYLE.md rule 11), used by the CLI and the portal.
 * Browser-safe: no `node:` imports; the transport is an injected fetch, so the CLI can pass
 * one that trusts the coordinator's own CA. Error bodies are rebuilt into the typed
 * SecondsiteError from their code; a refused connection becomes SS_UNAVAILABLE.
 */
import { ERROR_CATALOGUE } from '../errors/catalogue.ts';
import { SecondsiteError, type ErrorCode } from '../errors/errors.ts';
import type {
  AssociationView,
  CloudView,
  MapKind,
  MapView,
  PolicyCreateRequest,
  PolicyUpdateRequest,
  PolicyUpdateView,
  PolicyView,
  JobView,
  KeyFileView,
  KeyView,
  ServerView,
  VaultView,
  VmView,
  ItemView,
  RecoveryPointView,
  ReplicationAction,
  PlanActionRequest,
  PlanView,
  FailoverOperation,
  FailoverBody,
  BandwidthRequest,
  BandwidthView,
  RevocationView,
  RevokeHostRequest,
  CapacityPlanView,
} from './types.ts';

/** The subset of the WHATWG fetch the client needs. */
export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
) => Promise<{ status: number; text(): Promise<string> }>;

export interface ApiClientOptions {
  /** Base URL of the coordinator, e.g. https://127.0.0.1:9443 */
  readonly url: string;
  readonly token: string;
  /** @default globalThis.fetch (a browser, or Node trusting only the system's roots) */
  readonly fetch?: FetchLike;
}

export interface ApiClient {
  createVault(name: string): Promise<VaultView>;
  listVaults(): Promise<VaultView[]>;
  getVault(name: string): Promise<VaultView>;
  listJobs(vault: string): Promise<JobView[]>;
  getJob(id: string): Promise<JobView>;
  resumeJob(id: string): Promise<JobView>;
  cancelJob(id: string): Promise<JobView>;
  /** Test-only route, present when the coordinator runs with SECONDSITE_TEST_JOBS=1. */
  startTestJob(vault: string, input: unknown): Promise<JobView>;
  downloadKey(
    vault: string,
    opts: { validFor?: string; singleUse?: boolean; server?: string },
  ): Promise<KeyFileView>;
  listKeys(vault: string): Promise<KeyView[]>;
  revokeKey(vault: string, keyId: string): Promise<KeyView>;
  listServers(vault: string): Promise<ServerView[]>;
  listClouds(vault: string): Promise<CloudView[]>;
  /** Starts the cloud.sync job; returns it at once. */
  syncCloud(vault: string, server: string, cloud: string): Promise<JobView>;
  createPolicy(vault: string, policy: PolicyCreateRequest): Promise<PolicyView>;
  listPolicies(vault: string): Promise<PolicyView[]>;
  /** Changes a policy's settings; returns the job that re-pairs its items, if any, at once. */
  updatePolicy(
    vault: string,
    policy: string,
    change: PolicyUpdateRequest,
  ): Promise<PolicyUpdateView>;
  /** Pairs SERVER/CLOUD source (primary) with target (secondary) under a policy. */
  associatePolicy(
    vault: string,
    policy: string,
    pair: { sourceCloud: string; targetCloud: string },
  ): Promise<AssociationView>;
  createMap(vault: string, kind: MapKind, map: MapView): Promise<MapView>;
  deleteMap(vault: string, kind: MapKind, map: MapView): Promise<MapView>;
  listMaps(vault: string, kind: MapKind): Promise<MapView[]>;
  /** VMs of the vault, or of one cloud given as SERVER/CLOUD. */
  listVms(vault: string, cloud?: string): Promise<VmView[]>;
  /** One VM, named SERVER/VM (or a bare name only one server has). */
  getVm(vault: string, name: string): Promise<VmView>;
  /** Starts "enable protection" for VMs of one SERVER/CLOUD; returns the job at once. */
  enableReplication(vault: string, sourceCloud: string, vms: readonly string[]): Promise<JobView>;
  /** Starts disable | pause | resume | resync of items; returns the job at once. */
  replicationAction(
    vault: string,
    action: ReplicationAction,
    vms: readonly string[],
  ): Promise<JobView>;
  listItems(vault: string): Promise<ItemView[]>;
  getItem(vault: string, vm: string): Promise<ItemView>;
  listRecoveryPoints(vault: string, vm: string): Promise<RecoveryPointView[]>;
  /** Starts a failover operation (test, cleanup-test, planned, unplanned, change-point, commit, reverse). */
  failover(vault: string, operation: FailoverOperation, body: FailoverBody): Promise<JobView>;
  /** A recovery plan (R28) between two SERVER/CLOUDs that a policy pairs. */
  createPlan(
    vault: string,
    plan: { name: string; sourceCloud: string; targetCloud: string },
  ): Promise<PlanView>;
  listPlans(vault: string): Promise<PlanView[]>;
  getPlan(vault: string, plan: string): Promise<PlanView>;
  /** Adds VMs to a group; one past the last group creates it. */
  addPlanVms(
    vault: string,
    plan: string,
    group: number | string,
    vms: readonly string[],
  ): Promise<PlanView>;
  addPlanAction(vault: string, plan: string, action: PlanActionRequest): Promise<PlanView>;
  /** R22: a host's replication bandwidth cap. */
  setBandwidth(vault: string, request: BandwidthRequest): Promise<BandwidthView>;
  /** Issue #7: revokes a host's credentials in the vault (pushed to every host). */
  revokeHost(vault: string, request: RevokeHostRequest): Promise<RevocationView>;
  /** R22: items' priority under their source hosts' caps. */
  setPriority(
    vault: string,
    /** high | normal | low (checked by the coordinator, naming the field). */
    priority: string,
    vms: readonly string[],
  ): Promise<{ items: ItemView[]; hosts: BandwidthView[] }>;
  /** R22: capacity plan; `bandwidth` in MB/s. */
  capacityPlan(
    vault: string,
    opts: { cloud?: string; policy?: string; bandwidth?: string | number },
  ): Promise<CapacityPlanView>;
}

function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CATALOGUE, code);
}

/** Rebuilds the typed error from an error body; anything unrecognised is SS_PROTOCOL. */
export function errorFromResponse(status: number, text: string): SecondsiteError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const err = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } })?.error;
  if (err !== undefined && isErrorCode(err.code)) {
    const details =
      typeof err.details === 'object' && err.details !== null
        ? (err.details as Record<string, unknown>)
        : {};
    return new SecondsiteError(err.code, String(err.message ?? err.code), details);
  }
  return new SecondsiteError('SS_PROTOCOL', `unexpected HTTP ${status} from the coordinator`, {
    status,
  });
}

export function createApiClient(opts: ApiClientOptions): ApiClient {
  const base = opts.url.replace(/\/+$/, '');
  const fetchFn: FetchLike = opts.fetch ?? ((url, init) => globalThis.fetch(url, init));

  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${opts.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Awaited<ReturnType<FetchLike>>;
    try {
      res = await fetchFn(`${base}/api/v1${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (e) {
      const why =
        e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : '';
      throw new SecondsiteError(
        'SS_UNAVAILABLE',
        `cannot reach the coordinator at ${base}${why ? `: ${why}` : ''}`,
        { url: base },
        { cause: e },
      );
    }
    const text = await res.text();
    if (res.status >= 400) throw errorFromResponse(res.status, text);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new SecondsiteError('SS_PROTOCOL', 'the coordinator answered with invalid JSON', {
        status: res.status,
      });
    }
  }

  const seg = encodeURIComponent;
  return {
    createVault: (name) => call('POST', '/vaults', { name }),
    listVaults: async () => (await call<{ vaults: VaultView[] }>('GET', '/vaults')).vaults,
    getVault: (name) => call('GET', `/vaults/${seg(name)}`),
    listJobs: async (vault) =>
      (await call<{ jobs: JobView[] }>('GET', `/jobs?vault=${seg(vault)}`)).jobs,
    getJob: (id) => call('GET', `/jobs/${seg(id)}`),
    resumeJob: (id) => call('POST', `/jobs/${seg(id)}/resume`),
    cancelJob: (id) => call('POST', `/jobs/${seg(id)}/cancel`),
    startTestJob: (vault, input) => call('POST', '/test/jobs', { vault, input }),
    downloadKey: (vault, opts) => call('POST', `/vaults/${seg(vault)}/keys`, opts),
    listKeys: async (vault) =>
      (await call<{ keys: KeyView[] }>('GET', `/vaults/${seg(vault)}/keys`)).keys,
    revokeKey: (vault, keyId) => call('POST', `/vaults/${seg(vault)}/keys/${seg(keyId)}/revoke`),
    listServers: async (vault) =>
      (await call<{ servers: ServerView[] }>('GET', `/vaults/${seg(vault)}/servers`)).servers,
    listClouds: async (vault) =>
      (await call<{ clouds: CloudView[] }>('GET', `/vaults/${seg(vault)}/clouds`)).clouds,
    syncCloud: (vault, server, cloud) =>
      call('POST', `/vaults/${seg(vault)}/clouds/sync`, { server, cloud }),
    createPolicy: (vault, policy) => call('POST', `/vaults/${seg(vault)}/policies`, policy),
    listPolicies: async (vault) =>
      (await call<{ policies: PolicyView[] }>('GET', `/vaults/${seg(vault)}/policies`)).policies,
    updatePolicy: (vault, policy, change) =>
      call('PATCH', `/vaults/${seg(vault)}/policies/${seg(policy)}`, change),
    associatePolicy: (vault, policy, pair) =>
      call('POST', `/vaults/${seg(vault)}/policies/${seg(policy)}/associations`, pair),
    createMap: (vault, kind, map) => call('POST', `/vaults/${seg(vault)}/${kind}-maps`, map),
    deleteMap: (vault, kind, map) =>
      call(
        'DELETE',
        `/vaults/${seg(vault)}/${kind}-maps?source=${seg(map.source)}&target=${seg(map.target)}`,
      ),
    listMaps: async (vault, kind) =>
      (await call<{ maps: MapView[] }>('GET', `/vaults/${seg(vault)}/${kind}-maps`)).maps,
    listVms: async (vault, cloud) =>
      (
        await call<{ vms: VmView[] }>(
          'GET',
          `/vaults/${seg(vault)}/vms${cloud === undefined ? '' : `?cloud=${seg(cloud)}`}`,
        )
      ).vms,
    getVm: (vault, name) => call('GET', `/vaults/${seg(vault)}/vms/${seg(name)}`),
    enableReplication: (vault, sourceCloud, vms) =>
      call('POST', `/vaults/${seg(vault)}/replication/enable`, { sourceCloud, vms }),
    replicationAction: (vault, action, vms) =>
      call('POST', `/vaults/${seg(vault)}/replication/${action}`, { vms }),
    listItems: async (vault) =>
      (await call<{ items: ItemView[] }>('GET', `/vaults/${seg(vault)}/items`)).items,
    getItem: (vault, vm) => call('GET', `/vaults/${seg(vault)}/items/${seg(vm)}`),
    failover: (vault, operation, body) =>
      call('POST', `/vaults/${seg(vault)}/failover/${operation}`, body),
    listRecoveryPoints: async (vault, vm) =>
      (
        await call<{ points: RecoveryPointView[] }>(
          'GET',
          `/vaults/${seg(vault)}/items/${seg(vm)}/recovery-points`,
        )
      ).points,
    createPlan: (vault, plan) => call('POST', `/vaults/${seg(vault)}/plans`, plan),
    listPlans: async (vault) =>
      (await call<{ plans: PlanView[] }>('GET', `/vaults/${seg(vault)}/plans`)).plans,
    getPlan: (vault, plan) => call('GET', `/vaults/${seg(vault)}/plans/${seg(plan)}`),
    addPlanVms: (vault, plan, group, vms) =>
      call('POST', `/vaults/${seg(vault)}/plans/${seg(plan)}/vms`, { group, vms }),
    addPlanAction: (vault, plan, action) =>
      call('POST', `/vaults/${seg(vault)}/plans/${seg(plan)}/actions`, action),
    setBandwidth: (vault, request) => call('PUT', `/vaults/${seg(vault)}/bandwidth`, request),
    revokeHost: (vault, request) => call('POST', `/vaults/${seg(vault)}/revoked-hosts`, request),
    setPriority: (vault, priority, vms) =>
      call('POST', `/vaults/${seg(vault)}/replication/priority`, { priority, vms }),
    capacityPlan: (vault, o) => {
      const q = new URLSearchParams();
      if (o.cloud !== undefined) q.set('cloud', o.cloud);
      if (o.policy !== undefined) q.set('policy', o.policy);
      if (o.bandwidth !== undefined) q.set('bandwidth', String(o.bandwidth));
      const qs = q.toString();
      return call('GET', `/vaults/${seg(vault)}/capacity/plan${qs === '' ? '' : `?${qs}`}`);
    },
  };
}
