/**
 * Failover operations for one replicated item (R23–R27), as the coordinator drives them: each
 * is a short sequence of host commands through the providers, then the item's new state. Jobs
 * run them one VM per step (failover-jobs.ts) and recovery plans run them per group
 * (coordinator/plans/plan-job.ts `runVm`).
 *
 * Every host command id is `<job>.<vm>.<sub-step>`, so an operation run again after a
 * coordinator restart resends the same commands and each host answers from its record.
 * The item changes only after the hosts did their part, and each change is checked against
 * the state machine (coordinator/domain/item-state.ts) first, so a re-run is harmless.
 *
 *   test          target: test_failover → item.testFailover (replication continues)
 *   cleanup-test  target: cleanup_test  → item.testHistory (+ notes)
 *   planned       source: prepare_failover (stop, flush, final point shipped, digests)
 *                 target: failover at that point, digests compared → failed-over, epoch + 1
 *   unplanned     [source: prepare_failover, best effort, with --shutdown-source on]
 *                 target: failover at the chosen point → failed-over, epoch + 1
 *                 (the source site may be gone: nothing else needs it, R30)
 *   change-point  target: change_point (before commit)
 *   commit        target: commit_failover → committed
 *   reverse       source: fence (the old epoch's unshipped bytes are reported as discarded),
 *                 source: pair as replica; target: pair as primary, in-sync after a planned
 *                 failover, resync after an unplanned one → sides swapped, protected or
 *                 resynchronizing (until the source reports the resync done)
 */
import { SecondsiteError, badInput } from '../../common/errors/errors.ts';
import type {
  FailoverResultMsg,
  PairHostVmCommand,
} from '../../common/wire/host-control-messages.ts';
import { transition, type ItemEvent } from '../domain/item-state.ts';
import { parseQualified, pickSubnet, sameServer } from '../domain/mapping.ts';
import type { NicPlacement } from '../domain/placement.ts';
import { failbackNic } from '../domain/failback-network.ts';
import {
  applyEvent,
  pairSettings,
  type ItemRecord,
  type PointSummary,
} from '../domain/protection.ts';
import { sendHostCommand, type HostCommandBody } from '../replication/host-relay.ts';
import type { ProtectionService } from '../replication/protection-service.ts';

export const FAILOVER_OPS = [
  'test',
  'cleanup-test',
  'planned',
  'unplanned',
  'change-point',
  'commit',
  'reverse',
] as const;
export type FailoverOp = (typeof FAILOVER_OPS)[number];

export interface OpRun {
  readonly vaultId: string;
  readonly jobId: string;
  readonly op: FailoverOp;
  readonly vm: string;
  /** latest | latest-app-consistent | a point id (test, unplanned, change-point). */
  readonly point?: string;
  /** Test failover: SERVER/VMNETWORK the test VM attaches to; none = not connected. */
  readonly network?: string;
  /** Unplanned: try to stop the source and ship what it has first. */
  readonly shutdownSource?: boolean;
  /** cleanup-test: what the administrator observed. */
  readonly notes?: string;
}

/** The state event each operation applies (test and cleanup-test change no state). */
const EVENT: Partial<Record<FailoverOp, ItemEvent>> = {
  planned: 'failover-planned',
  unplanned: 'failover-unplanned',
  'change-point': 'change-point',
  commit: 'commit',
};

const pointOf = (m: FailoverResultMsg | null | undefined): PointSummary | null => {
  const p = m?.point;
  if (p === null || p === undefined || p.id === '') return null;
  return {
    id: p.id,
    time: Number(p.timeMs),
    type: p.type === 'RECOVERY_POINT_TYPE_APP_CONSISTENT' ? 'app-consistent' : 'crash-consistent',
  };
};

const nicsOf = (nics: readonly NicPlacement[]): { network: string; subnet: string }[] =>
  nics.map((n) => ({
    network: n.network ?? '',
    subnet: n.network === null ? '' : (n.subnet ?? ''),
  }));

export class FailoverOps {
  constructor(private readonly svc: ProtectionService) {}

  /** Refuses, before any job starts, an operation the item's state does not allow. */
  async check(
    vaultId: string,
    op: FailoverOp,
    vm: string,
    run: Partial<OpRun> = {},
  ): Promise<void> {
    const item = await this.svc.items.require(vaultId, vm);
    const event = EVENT[op];
    if (event !== undefined) transition(item.state, event, vm);
    if (op === 'test') {
      if (item.testFailover != null) {
        throw new SecondsiteError(
          'SS_CONFLICT',
          `${vm} already has a test failover (${item.testFailover.testVm}); clean it up first: ` +
            `secondsite failover cleanup-test --vault VAULT --vm ${vm}`,
          { vm },
        );
      }
      if (item.targetHost === null || item.latestPoint === null) {
        throw new SecondsiteError('SS_CONFLICT', `${vm} has no recovery point to test yet`, { vm });
      }
      if (run.network !== undefined) {
        const n = parseQualified('network', run.network);
        if (!sameServer(n.server, item.targetServer)) {
          throw badInput('network', `the test network must be on ${item.targetServer}`);
        }
      }
    }
    if (op === 'reverse' && item.state !== 'committed') {
      throw new SecondsiteError(
        'SS_CONFLICT',
        `cannot reverse ${vm}: it is ${item.state}; commit the failover first`,
        { vm, state: item.state },
      );
    }
    if (op === 'change-point' && run.point === undefined) {
      throw badInput('recoveryPoint', 'name the point to change to');
    }
  }

  async run(r: OpRun, signal: AbortSignal): Promise<unknown> {
    const item = await this.svc.items.require(r.vaultId, r.vm);
    switch (r.op) {
      case 'test':
        return this.test(r, item, signal);
      case 'cleanup-test':
        return this.cleanupTest(r, item, signal);
      case 'planned':
      case 'unplanned':
        return this.failover(r, item, signal);
      case 'change-point':
        return this.changePoint(r, item, signal);
      case 'commit':
        return this.commit(r, item, signal);
      case 'reverse':
        return this.reverse(r, item, signal);
    }
  }

  private cmd(
    r: OpRun,
    item: ItemRecord,
    side: 'source' | 'target',
    sub: string,
    command: HostCommandBody,
    signal: AbortSignal,
    timeoutMs?: number,
  ) {
    const host = side === 'source' ? item.sourceHost : item.targetHost;
    if (host === null) throw new SecondsiteError('SS_CONFLICT', `${item.vm} has no target host`);
    return sendHostCommand(this.svc.deps.hub, {
      vaultId: item.vaultId,
      server: side === 'source' ? item.sourceServer : item.targetServer,
      host,
      commandId: `${r.jobId}.${item.vm}.${sub}`,
      command,
      signal,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    });
  }

  private now(): number {
    return this.svc.deps.clock.now();
  }

  private async test(r: OpRun, item: ItemRecord, signal: AbortSignal): Promise<unknown> {
    if (item.testFailover?.jobId === r.jobId) return item.testFailover;
    await this.check(r.vaultId, 'test', r.vm, r);
    const nics = await this.testNics(item, r.network);
    const result = await this.cmd(
      r,
      item,
      'target',
      'test',
      {
        testFailover: { name: item.vm, point: r.point ?? 'latest', nics },
      },
      signal,
    );
    const record = {
      since: this.now(),
      point: pointOf(result.failover),
      testVm: result.failover?.testVm || `${item.vm}-test`,
      jobId: r.jobId,
    };
    await this.svc.items.update(r.vaultId, r.vm, (i) =>
      i === undefined ? i : { ...i, testFailover: record, updatedAt: this.now() },
    );
    return record;
  }

  /** The replica's adapters on the chosen test network (subnet-name rule), or none. */
  private async testNics(
    item: ItemRecord,
    network: string | undefined,
  ): Promise<{ network: string; subnet: string }[]> {
    const count = item.placement?.nics.length ?? 0;
    if (network === undefined)
      return Array.from({ length: count }, () => ({ network: '', subnet: '' }));
    const q = parseQualified('network', network);
    const site = await this.svc.deps.targetSite(item.vaultId, item.targetServer, item.targetCloud);
    const target = site.vmNetworks.find((n) => n.name === q.name);
    if (target === undefined) {
      throw badInput(
        'network',
        `${network} is not a VM network of ${item.targetServer}/${item.targetCloud}`,
      );
    }
    return (item.placement?.nics ?? []).map((n) => ({
      network: q.name,
      subnet: pickSubnet(n.subnet, target.subnets) ?? '',
    }));
  }

  private async cleanupTest(r: OpRun, item: ItemRecord, signal: AbortSignal): Promise<unknown> {
    const test = item.testFailover;
    if (test == null) return { cleaned: false, reason: 'no test failover is running' };
    await this.cmd(r, item, 'target', 'cleanup-test', { cleanupTest: { name: item.vm } }, signal);
    const done = { ...test, cleanedAt: this.now(), notes: r.notes ?? '' };
    await this.svc.items.update(r.vaultId, r.vm, (i) =>
      i === undefined
        ? i
        : {
            ...i,
            testFailover: null,
            testHistory: [...(i.testHistory ?? []), done].slice(-10),
            updatedAt: this.now(),
          },
    );
    return { cleaned: true, testVm: test.testVm, notes: done.notes };
  }

  private async failover(r: OpRun, item: ItemRecord, signal: AbortSignal): Promise<unknown> {
    if (item.state === 'failed-over' && item.failover != null) return item.failover; // re-run
    const event = EVENT[r.op] as ItemEvent;
    transition(item.state, event, item.vm);
    const epoch = item.epoch + 1;
    let point = r.point ?? 'latest';
    let digests: string[] | null = null;
    let sourceNote = '';
    if (r.op === 'planned' || r.shutdownSource === true) {
      try {
        const prepared = await this.cmd(
          r,
          item,
          'source',
          'prepare',
          {
            prepareFailover: { name: item.vm },
          },
          signal,
          r.op === 'planned' ? undefined : 30_000,
        );
        const final = pointOf(prepared.failover);
        if (final !== null && (r.op === 'planned' || point === 'latest')) point = final.id;
        digests = prepared.failover?.diskDigests ?? null;
        sourceNote = 'the source VM was stopped and its last changes shipped';
      } catch (e) {
        if (r.op === 'planned') throw e;
        sourceNote = `the source could not be shut down (${(e as Error).message}); failing over from the retained point`;
      }
    }
    const result = await this.cmd(
      r,
      item,
      'target',
      'failover',
      {
        failover: {
          name: item.vm,
          point,
          epoch: String(epoch),
          nics: await this.failoverNics(item),
          digests: digests !== null,
        },
      },
      signal,
    );
    if (digests !== null && r.op === 'planned') {
      const got = result.failover?.diskDigests ?? [];
      if (got.length !== digests.length || got.some((d, i) => d !== digests?.[i])) {
        throw new SecondsiteError(
          'SS_VERIFY_FAILED',
          `after the planned failover of ${item.vm} the replica differs from the primary's final state`,
          { vm: item.vm, primary: digests, replica: got },
        );
      }
    }
    const chosen = pointOf(result.failover);
    const updated = await this.svc.items.update(r.vaultId, r.vm, (i) => {
      if (i === undefined || i.state === 'failed-over') return i;
      return {
        ...applyEvent(i, event, this.now()),
        epoch,
        failover: {
          type: r.op === 'planned' ? 'planned' : 'unplanned',
          point: chosen,
          at: this.now(),
          fromHost: i.sourceHost,
        },
      };
    });
    return {
      state: updated?.state,
      recoveryPoint: chosen,
      verified: r.op === 'planned',
      ...(sourceNote === '' ? {} : { source: sourceNote }),
    };
  }

  /**
   * The adapters the VM gets where it fails over to: the placement's (R8), or on a failback
   * R10's table per adapter (coordinator/domain/failback-network.ts).
   */
  private async failoverNics(item: ItemRecord): Promise<{ network: string; subnet: string }[]> {
    const back = item.failback;
    if (back == null) return nicsOf(item.placement?.nics ?? []);
    const hosts = await this.svc.deps.vms.hosts(item.vaultId);
    const running = hosts
      .find((h) => sameServer(h.server, item.sourceServer) && h.host === item.sourceHost)
      ?.vms.find((v) => v.name === item.vm);
    const site = await this.svc.deps.targetSite(item.vaultId, item.targetServer, item.targetCloud);
    const maps = (await this.svc.deps.maps.list(item.vaultId, 'network')).filter((m) =>
      sameServer(m.source.server, back.replicaServer),
    );
    const q = (server: string, name: string) => (name === '' ? null : { server, name });
    return back.primaryNics.map((primary, i) => {
      const now = running?.nics[i];
      const nic = failbackNic({
        primary:
          primary.network === ''
            ? null
            : {
                network: { server: back.primaryServer, name: primary.network },
                subnet: primary.subnet || null,
              },
        replicaAtFailover: {
          network: q(back.replicaServer, back.replicaNicsAtFailover[i]?.network ?? ''),
        },
        replicaNow: {
          network: q(back.replicaServer, now?.network ?? ''),
          subnet: now?.subnet || null,
        },
        reverseMaps: maps,
        primaryNetworks: site.vmNetworks,
      });
      this.svc.deps.log.info(
        { vm: item.vm, nic: i, rule: nic.rule, network: nic.network?.name ?? null },
        'failback adapter',
      );
      return {
        network: nic.network?.name ?? '',
        subnet: nic.network === null ? '' : (nic.subnet ?? ''),
      };
    });
  }

  private async changePoint(r: OpRun, item: ItemRecord, signal: AbortSignal): Promise<unknown> {
    transition(item.state, 'change-point', item.vm);
    const result = await this.cmd(
      r,
      item,
      'target',
      'change-point',
      {
        changePoint: {
          name: item.vm,
          point: r.point ?? 'latest',
          epoch: String(item.epoch),
          nics: await this.failoverNics(item),
          digests: false,
        },
      },
      signal,
    );
    const chosen = pointOf(result.failover);
    await this.svc.items.update(r.vaultId, r.vm, (i) =>
      i?.failover == null
        ? i
        : { ...i, failover: { ...i.failover, point: chosen }, updatedAt: this.now() },
    );
    return { recoveryPoint: chosen };
  }

  private async commit(r: OpRun, item: ItemRecord, signal: AbortSignal): Promise<unknown> {
    if (item.state === 'committed') return { state: item.state };
    transition(item.state, 'commit', item.vm);
    await this.cmd(r, item, 'target', 'commit', { commitFailover: { name: item.vm } }, signal);
    const updated = await this.svc.items.update(r.vaultId, r.vm, (i) =>
      i === undefined || i.state === 'committed' ? i : applyEvent(i, 'commit', this.now()),
    );
    return { state: updated?.state };
  }

  private async reverse(r: OpRun, item: ItemRecord, signal: AbortSignal): Promise<unknown> {
    if (item.state !== 'committed') {
      // A re-run after the sides were swapped: only the resync may still be running.
      if (item.state === 'resynchronizing') return this.waitResync(r, signal);
      return { state: item.state };
    }
    const planned = item.failover?.type === 'planned';
    const policy = await this.svc.deps.policies.get(item.vaultId, item.policy);
    if (policy === undefined) {
      throw new SecondsiteError('SS_NOT_FOUND', `policy "${item.policy}" of ${item.vm} is gone`);
    }
    const fenced = await this.cmd(
      r,
      item,
      'source',
      'fence',
      {
        fence: { name: item.vm, epoch: String(item.epoch) },
      },
      signal,
    );
    const discarded = Number(fenced.failover?.unshippedBytes ?? 0);
    const hosts = await this.svc.deps.vms.hosts(item.vaultId);
    const oldSource = hosts.find(
      (h) => sameServer(h.server, item.sourceServer) && h.host === item.sourceHost,
    );
    const port = policy.auth === 'certificate' ? oldSource?.certPort : oldSource?.ticketPort;
    if (!oldSource?.address || !port) {
      throw new SecondsiteError(
        'SS_UNAVAILABLE',
        `${item.sourceHost} has not reported its replication address; it must run to receive the reverse replication`,
        { host: item.sourceHost },
      );
    }
    const settings = pairSettings(policy, this.svc.timeScale);
    const source = oldSource.vms.find((v) => v.name === item.vm);
    const asReplica: PairHostVmCommand = {
      name: item.vm,
      role: 'replica',
      peerHost: item.targetHost ?? '',
      peerAddress: '',
      epoch: String(item.epoch),
      disks: (source?.disks ?? []).map((d) => ({ sizeBytes: String(d.sizeBytes), path: '' })),
      nics: (source?.nics ?? []).map((n) => ({ network: n.network, subnet: n.subnet })),
      startInitialCopy: false,
      // The host swaps a former primary's role only for a reverse (a baseline is named).
      baseline: planned ? 'in-sync' : 'resync',
      ...settings,
    };
    await this.cmd(r, item, 'source', 'pair-replica', { pairVm: asReplica }, signal);
    const asPrimary: PairHostVmCommand = {
      name: item.vm,
      role: 'primary',
      peerHost: item.sourceHost,
      peerAddress: `${oldSource.address}:${port}`,
      epoch: String(item.epoch),
      disks: [],
      nics: [],
      startInitialCopy: true,
      baseline: planned ? 'in-sync' : 'resync',
      ...settings,
    };
    await this.cmd(r, item, 'target', 'pair-primary', { pairVm: asPrimary }, signal);
    const event: ItemEvent = planned ? 'reverse-in-sync' : 'reverse-resync';
    const swapped = await this.svc.items.update(r.vaultId, r.vm, (i) => {
      if (i === undefined || i.state !== 'committed') return i;
      const next = applyEvent(i, event, this.now());
      return {
        ...next,
        sourceServer: i.targetServer,
        sourceCloud: i.targetCloud,
        sourceHost: i.targetHost ?? '',
        targetServer: i.sourceServer,
        targetCloud: i.sourceCloud,
        targetHost: i.sourceHost,
        placement: null,
        failover: null,
        // R10: a later failback chooses the original primary's adapters from these.
        failback:
          i.failback != null
            ? null // this reverse is the failback itself: back to the original sides
            : {
                primaryServer: i.sourceServer,
                primaryNics: (source?.nics ?? []).map((n) => ({
                  network: n.network,
                  subnet: n.subnet,
                })),
                replicaServer: i.targetServer,
                replicaNicsAtFailover: nicsOf(i.placement?.nics ?? []),
              },
        latestPoint: null,
        cycles: [],
        failure: null,
        copy: null,
      };
    });
    this.svc.deps.log.info(
      { vm: item.vm, state: swapped?.state, discardedBytes: discarded },
      'replication reversed',
    );
    if (swapped?.state === 'resynchronizing') await this.waitResync(r, signal);
    return { reversed: true, resync: !planned, discardedBytes: discarded };
  }

  /** Until the new source reports the replica equal again (its resync done). */
  private waitResync(r: OpRun, signal: AbortSignal): Promise<unknown> {
    return this.svc.untilResynced(r.vaultId, r.vm, this.now(), signal);
  }
}
