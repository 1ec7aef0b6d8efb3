/**
 * Replicated items (R14, R20, R21): enabling, disabling, pausing, resuming and resyncing
 * protection, and what `item list/show` and `recovery-point list` print.
 *
 * Commands are checked here, before anything changes (a VM that is not in a cloud associated
 * with a policy is refused with the reason); the work itself runs as durable jobs
 * (protection-jobs.ts). A watcher folds the hosts' reports into the items every
 * WATCH_INTERVAL_MS: a new newest point at the target is a cycle, a sender error opens a
 * failure, an unreachable host too; a finished initial copy starts "finalize protection".
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SecondsiteError, badInput } from '../../common/errors/errors.ts';
import type { Logger } from '../../common/log/log.ts';
import type { Clock } from '../../common/time/clock.ts';
import type { ChannelHub } from '../channel/channel-hub.ts';
import type { Job } from '../domain/job.ts';
import { parseQualified, sameServer, type Qualified, type ResourceMap } from '../domain/mapping.ts';
import type { TargetSite } from '../domain/placement.ts';
import type { Policy } from '../domain/policy.ts';
import {
  applyEvent,
  checkNotProtected,
  resyncDone,
  initialCopyDone,
  itemView,
  newItem,
  observe,
  REPAIRABLE_STATES,
  scheduledStartDue,
  withJobError,
  type ItemRecord,
  type ItemView,
  type VmStatus,
} from '../domain/protection.ts';
import { identityNameOf, serverState } from '../domain/server.ts';
import type { ItemEvent } from '../domain/item-state.ts';
import { statesAllowing } from '../domain/item-state.ts';
import type { HostRecord, VmInventory } from '../inventory/vm-inventory.ts';
import { vmStatusOf } from '../inventory/vm-inventory.ts';
import type { JobRunner } from '../jobs/job-runner.ts';
import type { VaultService } from '../vaults/vault-service.ts';
import { HOST_COMMAND_TIMEOUT_MS, sendHostCommand } from './host-relay.ts';
import { ItemRepo } from './item-repo.ts';
import type { Store } from '../store/store.ts';

export const WATCH_INTERVAL_MS = 1000;

/** What the protection service needs of policies (coordinator/policies/). */
export interface PolicySource {
  get(vaultId: string, name: string): Promise<Policy | undefined>;
  protectionOf(
    vaultId: string,
    server: string,
    cloud: string,
  ): Promise<{ policy: Policy; source: Qualified; target: Qualified } | undefined>;
}

/** What it needs of network and storage maps (coordinator/mappings/). */
export interface MapSource {
  list(vaultId: string, kind: 'network' | 'storage'): Promise<ResourceMap[]>;
}

export interface ProtectionDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly log: Logger;
  readonly vaults: VaultService;
  readonly vms: VmInventory;
  readonly hub: ChannelHub;
  readonly policies: PolicySource;
  readonly maps: MapSource;
  /** The target cloud's hosts, storage and networks as its server reported them. */
  readonly targetSite: (vaultId: string, server: string, cloud: string) => Promise<TargetSite>;
  /**
   * Multiplies the copy interval pushed to hosts and every health duration. 1 in production;
   * tests and the demo's fast mode run whole cycles in seconds (SECONDSITE_TIME_SCALE).
   * @default 1
   */
  readonly timeScale?: number;
  /**
   * The health monitoring window (Hyper-V Replica's monitoring interval): missed cycles are
   * counted over it. @default 1 hour (SECONDSITE_MONITORING_WINDOW)
   */
  readonly monitoringWindowMs?: number;
}

export const PROTECTION_JOB = Object.freeze({
  enable: 'replication.enable',
  finalize: 'replication.finalize',
  disable: 'replication.disable',
  pause: 'replication.pause',
  resume: 'replication.resume',
  resync: 'replication.resync',
  reconnect: 'replication.reconnect-nics',
  policyApply: 'policy.apply',
});

export interface RecoveryPointView {
  readonly id: string;
  readonly time: string;
  readonly type: 'crash-consistent' | 'app-consistent';
}

export class ProtectionService {
  readonly items: ItemRepo;
  private jobs: JobRunner | undefined;
  private readonly finalizing = new Set<string>();
  private readonly starting = new Set<string>();

  constructor(readonly deps: ProtectionDeps) {
    this.items = new ItemRepo(deps.store);
  }

  get timeScale(): number {
    return this.deps.timeScale ?? 1;
  }

  /** The runner is built after the job types (which need this service). */
  setJobs(jobs: JobRunner): void {
    this.jobs = jobs;
    jobs.onUpdate((job) => {
      if (job.state === 'failed' && job.type === PROTECTION_JOB.enable) {
        void this.enableFailed(job).catch((e: unknown) =>
          this.deps.log.error({ err: e, job: job.id }, 'could not record a failed enable'),
        );
      }
    });
  }

  private requireJobs(): JobRunner {
    if (this.jobs === undefined) throw new Error('ProtectionService.setJobs was not called');
    return this.jobs;
  }

  // ---- commands -------------------------------------------------------------------------

  /** R14: checks every VM, creates the items (`enabling`) and starts "enable protection". */
  async enable(vaultName: string, sourceCloud: string, vmNames: readonly string[]): Promise<Job> {
    const vault = await this.deps.vaults.byName(vaultName);
    const cloud = parseQualified('sourceCloud', sourceCloud);
    if (vmNames.length === 0) throw badInput('vms', 'name at least one VM');
    const names = new Set<string>();
    for (const n of vmNames) {
      if (names.has(n)) throw badInput('vms', `${n} is named twice`);
      names.add(n);
    }
    const protection = await this.deps.policies.protectionOf(vault.id, cloud.server, cloud.name);
    if (protection === undefined) {
      throw new SecondsiteError(
        'SS_NOT_PROTECTABLE',
        `cloud ${cloud.server}/${cloud.name} is not associated with a replication policy as a ` +
          'source cloud; run: secondsite policy associate --vault VAULT --policy P ' +
          `--source-cloud ${cloud.server}/${cloud.name} --target-cloud SERVER/CLOUD`,
        { cloud: `${cloud.server}/${cloud.name}` },
      );
    }
    const hosts = await this.deps.vms.hosts(vault.id);
    const found = vmNames.map((name) => {
      const host = hosts.find(
        (h) =>
          sameServer(h.server, cloud.server) &&
          h.cloud === cloud.name &&
          h.vms.some((v) => v.name === name),
      );
      if (host === undefined) {
        const elsewhere = hosts.find((h) => h.vms.some((v) => v.name === name));
        throw new SecondsiteError(
          elsewhere === undefined ? 'SS_NOT_FOUND' : 'SS_NOT_PROTECTABLE',
          elsewhere === undefined
            ? `no VM named ${name} in cloud ${cloud.server}/${cloud.name}`
            : `${name} is in ${elsewhere.server}/${elsewhere.cloud ?? '(no cloud)'}, not in ` +
                `${cloud.server}/${cloud.name}; name the VM's own cloud with --source-cloud`,
          { vm: name },
        );
      }
      return { name, host };
    });
    for (const { name } of found) checkNotProtected(await this.items.get(vault.id, name), name);
    const now = this.deps.clock.now();
    const initial = protection.policy.initial;
    for (const { name, host } of found) {
      await this.items.update(vault.id, name, (existing) => {
        checkNotProtected(existing, name);
        return newItem({
          vaultId: vault.id,
          vm: name,
          policy: protection.policy.name,
          sourceServer: host.server,
          sourceCloud: cloud.name,
          sourceHost: host.host,
          targetServer: protection.target.server,
          targetCloud: protection.target.name,
          epoch: (existing?.epoch ?? 0) + 1,
          now,
          ...(initial.method === 'scheduled' ? { initialStartsAt: Date.parse(initial.at) } : {}),
        });
      });
    }
    return this.requireJobs().submit({
      vaultId: vault.id,
      type: PROTECTION_JOB.enable,
      input: {
        vaultId: vault.id,
        vms: found.map((f) => f.name),
        ...(initial.method === 'offline'
          ? { offline: { exportPath: initial.exportPath, importPath: initial.importPath } }
          : {}),
      },
    });
  }

  /** R20: disable, pause, resume, resync: checks every item's state, then starts the job. */
  async act(
    vaultName: string,
    action: 'disable' | 'pause' | 'resume' | 'resync',
    vmNames: readonly string[],
  ): Promise<Job> {
    const vault = await this.deps.vaults.byName(vaultName);
    if (vmNames.length === 0) throw badInput('vms', 'name at least one VM');
    const event: ItemEvent = action;
    for (const name of vmNames) {
      const item = await this.items.require(vault.id, name);
      if (!statesAllowing(event).includes(item.state)) applyEvent(item, event, 0);
    }
    return this.requireJobs().submit({
      vaultId: vault.id,
      type: PROTECTION_JOB[action],
      input: { vaultId: vault.id, vms: [...vmNames] },
    });
  }

  // ---- views ----------------------------------------------------------------------------

  async list(vaultName: string): Promise<ItemView[]> {
    const vault = await this.deps.vaults.byName(vaultName);
    const items = await this.items.list(vault.id);
    return Promise.all(items.map((i) => this.view(i)));
  }

  async show(vaultName: string, vm: string): Promise<ItemView> {
    const vault = await this.deps.vaults.byName(vaultName);
    return this.view(await this.items.require(vault.id, vm));
  }

  private async view(item: ItemRecord): Promise<ItemView> {
    const policy = await this.deps.policies.get(item.vaultId, item.policy);
    const hosts = await this.deps.vms.hosts(item.vaultId);
    const vmOn = (server: string, host: string | null) =>
      hosts
        .find((h) => sameServer(h.server, server) && h.host === host)
        ?.vms.find((v) => v.name === item.vm);
    // R22 churn attribution: the source host's measurement of the VM; what replication
    // carried: the target host's count.
    const churn = vmOn(item.sourceServer, item.sourceHost)?.churn;
    const received = vmOn(item.targetServer, item.targetHost)?.replication?.received;
    return itemView(item, policy?.copyFrequency ?? '5m', this.deps.clock.now(), {
      ...(churn ? { churn } : {}),
      ...(received ? { received } : {}),
      timeScale: this.timeScale,
      ...(this.deps.monitoringWindowMs === undefined
        ? {}
        : { windowMs: this.deps.monitoringWindowMs }),
    });
  }

  /** R21: the points the target host retains, asked of it now (through its provider). */
  async recoveryPoints(vaultName: string, vm: string): Promise<RecoveryPointView[]> {
    const vault = await this.deps.vaults.byName(vaultName);
    const item = await this.items.require(vault.id, vm);
    if (item.targetHost === null) return [];
    const result = await sendHostCommand(this.deps.hub, {
      vaultId: vault.id,
      server: item.targetServer,
      host: item.targetHost,
      commandId: `points-${vm}-${this.deps.clock.now()}-${Math.random().toString(36).slice(2)}`,
      command: { listPoints: { name: vm } },
      signal: AbortSignal.timeout(30_000),
      timeoutMs: 30_000,
    });
    return (result.points ?? []).map((p) => ({
      id: p.id,
      time: new Date(Number(p.timeMs)).toISOString(),
      type: p.type === 'RECOVERY_POINT_TYPE_APP_CONSISTENT' ? 'app-consistent' : 'crash-consistent',
    }));
  }

  // ---- the watcher ------------------------------------------------------------------------

  /** Folds host reports into items until the signal aborts. */
  async watch(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.sweep();
      } catch (e) {
        this.deps.log.error({ err: e }, 'item watcher failed a round');
      }
      // The timer's own signal handling removes its listener each round.
      await sleep(WATCH_INTERVAL_MS, undefined, { signal }).catch(() => undefined);
    }
  }

  /** One round over every item of every vault. */
  async sweep(): Promise<void> {
    for (const vault of await this.deps.vaults.list()) {
      const items = await this.items.list(vault.id);
      if (items.length === 0) continue;
      const hosts = await this.deps.vms.hosts(vault.id);
      for (const item of items) await this.observeItem(item, hosts);
    }
  }

  /** The source and target VM status of an item from the hosts' latest reports. */
  statusOf(
    item: ItemRecord,
    hosts: readonly HostRecord[],
    side: 'source' | 'target',
  ): VmStatus | undefined {
    const server = side === 'source' ? item.sourceServer : item.targetServer;
    const hostName = side === 'source' ? item.sourceHost : item.targetHost;
    if (hostName === null) return undefined;
    const host = hosts.find((h) => sameServer(h.server, server) && h.host === hostName);
    if (host === undefined) return undefined;
    const live = this.deps.hub.liveness(item.vaultId, identityNameOf(server));
    const up =
      serverState({
        channelOpen: live.open,
        lastHeartbeatAt: live.lastHeartbeatAt,
        heartbeatMs: this.deps.hub.heartbeatMs,
        now: this.deps.clock.now(),
      }) === 'connected';
    return vmStatusOf(
      host,
      host.vms.find((v) => v.name === item.vm),
      up,
    );
  }

  private async observeItem(item: ItemRecord, hosts: readonly HostRecord[]): Promise<void> {
    if (item.state === 'disabled' || item.state === 'enabling') return;
    const source = this.statusOf(item, hosts, 'source');
    const target = this.statusOf(item, hosts, 'target');
    const now = this.deps.clock.now();
    const updated = await this.items.update(item.vaultId, item.vm, (current) => {
      if (current === undefined || current.state === 'disabled') return current;
      const next = observe(current, source, target, now, this.deps.monitoringWindowMs);
      return JSON.stringify(next) === JSON.stringify(current) ? current : next;
    });
    if (updated !== undefined && scheduledStartDue(updated, now)) this.startScheduled(updated);
    if (
      updated?.state === 'initial-replication' &&
      initialCopyDone(source) &&
      // Paired paused (scheduled or offline, not started yet): not finished, even from zeros.
      source?.paused !== true &&
      !this.finalizing.has(`${item.vaultId}/${item.vm}`)
    ) {
      this.finalizing.add(`${item.vaultId}/${item.vm}`);
      const job = await this.requireJobs().submit({
        vaultId: item.vaultId,
        type: PROTECTION_JOB.finalize,
        input: { vaultId: item.vaultId, vm: item.vm },
      });
      this.deps.log.info({ vm: item.vm, job: job.id }, 'initial replication done; finalizing');
    }
  }

  /**
   * R8: a network map of a source server changed: the replicas of that server's items get
   * their adapters re-planned, and those whose adapters differ are reconnected (a job).
   */
  async onMapChange(change: {
    vaultId: string;
    kind: 'network' | 'storage';
    map: { source: Qualified };
  }): Promise<Job | undefined> {
    if (change.kind !== 'network') return undefined;
    const vms = (await this.items.list(change.vaultId))
      .filter(
        (i) =>
          i.state !== 'disabled' &&
          i.placement !== null &&
          sameServer(i.sourceServer, change.map.source.server),
      )
      .map((i) => i.vm);
    if (vms.length === 0) return undefined;
    return this.requireJobs().submit({
      vaultId: change.vaultId,
      type: PROTECTION_JOB.reconnect,
      input: { vaultId: change.vaultId, vms },
    });
  }

  /**
   * A policy's host-held settings changed (`policy update`): its items whose hosts hold a
   * pairing are paired again under their epoch (policy-apply-job.ts); undefined when none.
   */
  async onPolicyChange(vaultId: string, policy: string): Promise<Job | undefined> {
    const vms = (await this.items.list(vaultId))
      .filter(
        (i) =>
          i.policy.toLowerCase() === policy.toLowerCase() &&
          i.placement !== null &&
          REPAIRABLE_STATES.includes(i.state),
      )
      .map((i) => i.vm);
    if (vms.length === 0) return undefined;
    return this.requireJobs().submit({
      vaultId,
      type: PROTECTION_JOB.policyApply,
      input: { vaultId, vms },
    });
  }

  /**
   * Scheduled initial replication (R15): the time came; the source (paired paused) is resumed.
   * Durable and idempotent: the time is in the item, the command id is the item's own (a
   * restart before the acknowledgement sends the same id again, which the host applies once),
   * and `started` is saved once the host has answered.
   */
  private startScheduled(item: ItemRecord): void {
    const key = `${item.vaultId}/${item.vm}`;
    if (this.starting.has(key)) return;
    this.starting.add(key);
    void (async () => {
      await sendHostCommand(this.deps.hub, {
        vaultId: item.vaultId,
        server: item.sourceServer,
        host: item.sourceHost,
        commandId: `initial-start.${item.vm}.e${item.epoch}`,
        command: { pauseVm: { name: item.vm, paused: false } },
        signal: AbortSignal.timeout(HOST_COMMAND_TIMEOUT_MS),
      }).then((r) => {
        if (r.error) throw new SecondsiteError('SS_UNAVAILABLE', r.error.message);
      });
      await this.items.update(item.vaultId, item.vm, (i) =>
        i?.initialStart == null || i.epoch !== item.epoch
          ? i
          : {
              ...i,
              initialStart: { ...i.initialStart, started: true },
              updatedAt: this.deps.clock.now(),
            },
      );
      this.deps.log.info({ vm: item.vm }, 'scheduled initial replication started');
    })()
      .catch((e: unknown) =>
        this.deps.log.warn({ err: e, vm: item.vm }, 'scheduled start failed; retrying next round'),
      )
      .finally(() => this.starting.delete(key));
  }

  /**
   * Waits until the item's source reports its resync done (asked for at `since`), then makes
   * the item protected. Used by the resync job and by reverse replication after an unplanned
   * failover. `progress` hears the resync's compared fraction.
   */
  async untilResynced(
    vaultId: string,
    vm: string,
    since: number,
    signal: AbortSignal,
    progress: (fraction: number) => void = () => undefined,
  ): Promise<{ state: ItemRecord['state'] | undefined }> {
    for (;;) {
      const item = await this.items.require(vaultId, vm);
      if (item.state !== 'resynchronizing') return { state: item.state };
      const source = this.statusOf(item, await this.deps.vms.hosts(vaultId), 'source');
      if (resyncDone(source, since)) {
        const done = await this.items.update(vaultId, vm, (i) =>
          i?.state === 'resynchronizing'
            ? applyEvent(i, 'resync-finished', this.deps.clock.now())
            : i,
        );
        return { state: done?.state };
      }
      if (source !== undefined && source.copyTotal > 0) {
        progress(Math.min(1, source.copyDone / source.copyTotal));
      }
      await sleep(WATCH_INTERVAL_MS, undefined, { signal });
    }
  }

  /** A finalize job ended (either way): a later report may start another. */
  finalizeEnded(vaultId: string, vm: string): void {
    this.finalizing.delete(`${vaultId}/${vm}`);
  }

  private async enableFailed(job: Job): Promise<void> {
    const input = job.input as { vaultId: string; vms: string[] };
    const message = `enable protection failed: ${job.error?.message ?? 'unknown error'}`;
    for (const vm of input.vms) {
      await this.items.update(input.vaultId, vm, (item) => {
        if (item === undefined) return item;
        if (item.state !== 'enabling' && item.state !== 'initial-replication') return item;
        const now = this.deps.clock.now();
        return withJobError(applyEvent(item, 'enable-failed', now), message, now);
      });
    }
  }
}
