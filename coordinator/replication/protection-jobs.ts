/**
 * The durable jobs of protection (R14, R20). Steps are per VM ("place:VM1"), each idempotent:
 * host commands carry ids made from the job, step and VM, so a step re-run after a restart is
 * the same command and the host applies it once.
 *
 *   replication.enable    place:VM → pair-replica:VM → pair-primary:VM   (item → initial-replication)
 *   replication.finalize  finalize                                        (item → protected)
 *   replication.disable   unpair-primary:VM → unpair-replica:VM → disabled:VM
 *   replication.pause     pause:VM        (the source keeps journaling, stops shipping)
 *   replication.resume    resume:VM       (what piled up ships)
 *   replication.resync    resync:VM → wait-resync:VM
 */
import { z } from 'zod';
import { SecondsiteError } from '../../common/errors/errors.ts';
import { sameServer } from '../domain/mapping.ts';
import { placeReplica, replanNics, type Placement, type SourceVm } from '../domain/placement.ts';
import type { VmRecord } from '../inventory/vm-inventory.ts';
import {
  applyEvent,
  initialCopyDone,
  isExistingReplica,
  type ItemRecord,
} from '../domain/protection.ts';
import type { ItemEvent } from '../domain/item-state.ts';
import type { StepPlan } from '../domain/job.ts';
import type { JobType, StepContext, StepHandler } from '../jobs/job-types.ts';
import { itemSteps, perVmJob, type VmsInput } from './item-steps.ts';
import { PROTECTION_JOB, type ProtectionService } from './protection-service.ts';

const vmInput = z.object({ vaultId: z.string().min(1), vm: z.string().min(1) }).strict();
type VmInput = z.infer<typeof vmInput>;

/** The source VM as placement sees it, from its host's last report. */
function sourceVmOf(item: ItemRecord, record: VmRecord): SourceVm {
  return {
    name: item.vm,
    server: item.sourceServer,
    disks: record.disks.map((d) => ({
      index: d.index,
      sizeBytes: d.sizeBytes,
      classification: d.classification ?? null,
    })),
    nics: record.nics.map((n) => ({
      network: n.network === '' ? null : n.network,
      subnet: n.subnet === '' ? null : n.subnet,
    })),
  };
}

/**
 * The steps of "enable protection" for one VM (pure). Offline (R15): after pairing (the source
 * paused) the source exports, the administrator carries the folder (a manual step, left out
 * when the export and import paths are the same folder), the target imports, and the source
 * is seeded and resumed.
 */
export function enablePlan(input: VmsInput, vm: string): StepPlan[] {
  const steps: StepPlan[] = ['place', 'pair-replica', 'pair-primary'].map((p) => ({
    name: `${p}:${vm}`,
  }));
  const o = input.offline;
  if (o === undefined) return steps;
  steps.push({ name: `export:${vm}` });
  if (o.exportPath !== o.importPath) {
    steps.push({ name: `carry:${vm}`, kind: 'manual', instruction: carryInstruction(o, vm) });
  }
  steps.push({ name: `import:${vm}` }, { name: `seed:${vm}` });
  return steps;
}

export function carryInstruction(
  o: { exportPath: string; importPath: string },
  vm: string,
): string {
  return (
    `copy the folder ${o.exportPath}/${vm} from the source host into ${o.importPath} on the ` +
    `target host (e.g. cp -r ${o.exportPath}/${vm} ${o.importPath}/), then run: ` +
    'secondsite job resume ID (this job)'
  );
}

export function protectionJobTypes(svc: ProtectionService): JobType<unknown>[] {
  const { deps } = svc;
  const now = (): number => deps.clock.now();

  const { policyOf, hostCmd, sourceRecordOf, replicaPairing, primaryPairing } = itemSteps(svc);

  /** Applies a state event unless the item is already where the event leads. */
  const toState = async (vaultId: string, vm: string, event: ItemEvent, target: string) =>
    svc.items.update(vaultId, vm, (item) => {
      if (item === undefined) throw new SecondsiteError('SS_NOT_FOUND', `${vm} is not an item`);
      return item.state === target ? item : applyEvent(item, event, now());
    });

  const exportIdOf = (ctx: StepContext<VmsInput>, item: ItemRecord): string =>
    `${ctx.job.id}.${item.vm}.e${item.epoch}`;
  const offlineOf = (ctx: StepContext<VmsInput>) => {
    const o = ctx.input.offline;
    if (o === undefined) throw new SecondsiteError('SS_CONFLICT', 'not an offline enable');
    return o;
  };

  const enable = perVmJob(PROTECTION_JOB.enable, enablePlan, {
    place: async ({ input }, vm): Promise<Placement> => {
      const item = await svc.items.require(input.vaultId, vm);
      if (item.placement !== null) return item.placement;
      const hosts = await deps.vms.hosts(input.vaultId);
      const host = hosts.find(
        (h) => sameServer(h.server, item.sourceServer) && h.host === item.sourceHost,
      );
      const record = host?.vms.find((v) => v.name === vm);
      if (record === undefined) {
        throw new SecondsiteError('SS_NOT_FOUND', `${vm} is no longer on ${item.sourceHost}`, {
          vm,
        });
      }
      const site = await deps.targetSite(input.vaultId, item.targetServer, item.targetCloud);
      const placement = placeReplica(sourceVmOf(item, record), site, {
        network: await deps.maps.list(input.vaultId, 'network'),
        storage: await deps.maps.list(input.vaultId, 'storage'),
      });
      await svc.items.update(input.vaultId, vm, (i) =>
        i === undefined
          ? i
          : { ...i, placement, targetHost: placement.targetHost, updatedAt: now() },
      );
      return placement;
    },
    'pair-replica': async (ctx, vm) => {
      const item = await svc.items.require(ctx.input.vaultId, vm);
      if (item.placement === null) {
        throw new SecondsiteError('SS_CONFLICT', `${vm} was not placed`, { vm });
      }
      const source = await sourceRecordOf(item);
      let onboard = item.onboard;
      if (onboard === undefined) {
        // R19: decided once, before this step pairs (and so creates) the replica VM.
        const existing = (await deps.vms.hosts(item.vaultId))
          .find((h) => sameServer(h.server, item.targetServer) && h.host === item.targetHost)
          ?.vms.find((v) => v.name === vm);
        onboard =
          ctx.input.offline === undefined &&
          isExistingReplica(
            existing && { disks: existing.disks, role: existing.replication?.role ?? null },
            source.disks.map((d) => d.sizeBytes),
          );
        const decided = onboard;
        await svc.items.update(item.vaultId, vm, (i) =>
          i === undefined ? i : { ...i, onboard: decided, updatedAt: now() },
        );
      }
      const pairVm = replicaPairing(item, await policyOf(item), source, item.placement.nics);
      await hostCmd(ctx, item, 'target', { pairVm });
      return { host: item.targetHost, existingReplica: onboard };
    },
    'pair-primary': async (ctx, vm) => {
      const item = await svc.items.require(ctx.input.vaultId, vm);
      const policy = await policyOf(item);
      const pairVm = await primaryPairing(item, policy);
      await hostCmd(ctx, item, 'source', { pairVm });
      await toState(item.vaultId, vm, 'initial-started', 'initial-replication');
      return {
        peer: pairVm.peerAddress,
        initial: policy.initial.method,
        existingReplica: item.onboard ?? false,
      };
    },
    export: async (ctx, vm) => {
      const item = await svc.items.require(ctx.input.vaultId, vm);
      const o = offlineOf(ctx);
      const exportId = exportIdOf(ctx, item);
      await hostCmd(ctx, item, 'source', {
        exportVm: { name: vm, path: o.exportPath, exportId },
      });
      const waiting = o.exportPath === o.importPath ? null : carryInstruction(o, vm);
      await svc.items.update(item.vaultId, vm, (i) =>
        i === undefined ? i : { ...i, offline: { exportId, waiting }, updatedAt: now() },
      );
      return { exportId, folder: `${o.exportPath}/${vm}`, host: item.sourceHost };
    },
    import: async (ctx, vm) => {
      const item = await svc.items.require(ctx.input.vaultId, vm);
      const o = offlineOf(ctx);
      const exportId = exportIdOf(ctx, item);
      // A damaged copy fails this step naming the file and chunk (SS_IMPORT_INVALID).
      await hostCmd(ctx, item, 'target', {
        importVm: { name: vm, path: o.importPath, exportId },
      });
      await svc.items.update(item.vaultId, vm, (i) =>
        i === undefined ? i : { ...i, offline: { exportId, waiting: null }, updatedAt: now() },
      );
      return { exportId, folder: `${o.importPath}/${vm}`, host: item.targetHost };
    },
    seed: async (ctx, vm) => {
      const item = await svc.items.require(ctx.input.vaultId, vm);
      const exportId = exportIdOf(ctx, item);
      await hostCmd(ctx, item, 'source', { seedVm: { name: vm, exportId } });
      await hostCmd(ctx, item, 'source', { pauseVm: { name: vm, paused: false } }, '.resume');
      return { exportId };
    },
  });

  const finalize: JobType<VmInput> = {
    type: PROTECTION_JOB.finalize,
    input: vmInput,
    plan: () => [{ name: 'finalize' }],
    handler: (name) =>
      name !== 'finalize'
        ? undefined
        : async ({ input }) => {
            try {
              const item = await svc.items.require(input.vaultId, input.vm);
              if (item.state === 'protected') return { state: item.state };
              const hosts = await deps.vms.hosts(input.vaultId);
              if (!initialCopyDone(svc.statusOf(item, hosts, 'source'))) {
                throw new SecondsiteError(
                  'SS_CONFLICT',
                  `the initial copy of ${input.vm} has not finished`,
                  { vm: input.vm },
                );
              }
              const done = await toState(input.vaultId, input.vm, 'finalized', 'protected');
              return { state: done?.state };
            } finally {
              svc.finalizeEnded(input.vaultId, input.vm);
            }
          },
  };

  const disable = perVmJob(
    PROTECTION_JOB.disable,
    ['unpair-primary', 'unpair-replica', 'disabled'],
    {
      'unpair-primary': async (ctx, vm) => {
        const item = await svc.items.require(ctx.input.vaultId, vm);
        await hostCmd(ctx, item, 'source', { unpairVm: { name: vm, deleteReplica: false } });
        return { host: item.sourceHost };
      },
      'unpair-replica': async (ctx, vm) => {
        const item = await svc.items.require(ctx.input.vaultId, vm);
        if (item.targetHost === null) return { host: null };
        const policy = await deps.policies.get(item.vaultId, item.policy);
        const deleteReplica = policy?.deleteReplicaOnDisable ?? false;
        await hostCmd(ctx, item, 'target', { unpairVm: { name: vm, deleteReplica } });
        return { host: item.targetHost, replicaDeleted: deleteReplica };
      },
      disabled: async ({ input }, vm) => {
        const item = await toState(input.vaultId, vm, 'disable', 'disabled');
        return { state: item?.state };
      },
    },
  );

  const pauseLike = (type: string, phase: 'pause' | 'resume'): JobType<VmsInput> =>
    perVmJob(type, [phase], {
      [phase]: async (ctx, vm) => {
        const item = await svc.items.require(ctx.input.vaultId, vm);
        await hostCmd(ctx, item, 'source', { pauseVm: { name: vm, paused: phase === 'pause' } });
        const after = await toState(
          item.vaultId,
          vm,
          phase,
          phase === 'pause' ? 'paused' : 'protected',
        );
        return { state: after?.state };
      },
    });

  const resync = perVmJob(PROTECTION_JOB.resync, ['resync', 'wait-resync'], {
    resync: async (ctx, vm) => {
      const item = await svc.items.require(ctx.input.vaultId, vm);
      await hostCmd(ctx, item, 'source', { resyncVm: { name: vm } });
      await toState(item.vaultId, vm, 'resync', 'resynchronizing');
      return { started: true, askedAt: now() };
    },
    'wait-resync': async (ctx, vm) => {
      const asked = ctx.results[`resync:${vm}`] as { askedAt?: number } | undefined;
      return svc.untilResynced(ctx.input.vaultId, vm, asked?.askedAt ?? 0, ctx.signal, (f) =>
        ctx.progress(f),
      );
    },
  });

  const reconnect = perVmJob(PROTECTION_JOB.reconnect, ['reconnect'], {
    reconnect: async (ctx, vm) => {
      const item = await svc.items.require(ctx.input.vaultId, vm);
      if (item.placement === null || item.targetHost === null) return { changed: [] };
      const record = (await deps.vms.hosts(item.vaultId))
        .find((h) => sameServer(h.server, item.sourceServer) && h.host === item.sourceHost)
        ?.vms.find((v) => v.name === vm);
      if (record === undefined) return { changed: [] };
      const site = await deps.targetSite(item.vaultId, item.targetServer, item.targetCloud);
      const plan = replanNics(
        sourceVmOf(item, record),
        site,
        await deps.maps.list(item.vaultId, 'network'),
        item.placement.nics,
      );
      if (plan.changed.length === 0) return { changed: [] };
      // Pairing the replica again with other adapters reconnects them (the host's pair is
      // idempotent for everything else).
      await hostCmd(ctx, item, 'target', {
        pairVm: replicaPairing(item, await policyOf(item), record, plan.nics),
      });
      await svc.items.update(item.vaultId, vm, (i) =>
        i?.placement == null
          ? i
          : { ...i, placement: { ...i.placement, nics: plan.nics }, updatedAt: now() },
      );
      return { changed: plan.changed, nics: plan.nics };
    },
  });

  return [
    reconnect,
    enable,
    finalize,
    disable,
    pauseLike(PROTECTION_JOB.pause, 'pause'),
    pauseLike(PROTECTION_JOB.resume, 'resume'),
    resync,
  ] as unknown as JobType<unknown>[];
}

export type { StepHandler };
