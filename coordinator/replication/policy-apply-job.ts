/**
 * "Apply a policy change" (`policy update`): pairs each protected item of the policy again,
 * with the policy as it is when the step runs, under the item's epoch.
 *
 *   policy.apply   repair-replica:VM → repair-primary:VM   (per item; the item's state stays)
 *
 * The same epoch is what makes this a settings change and not a new replication: the hosts
 * keep the pairing's baseline, the source's journal and shipped-sequence cursor, and the
 * replica's store; only what the command carries changes (host_control.proto
 * PairHostVmCommand.ticket_auth). So a new auth moves shipping to the other channel (8084
 * certificates ↔ 8083 tickets) with no initial copy and no resync; the replica accepts the VM
 * from the same paired peer on either port. Each host persists the new pairing before it
 * answers, and each step is saved before the next, so the job resumes after a restart.
 *
 * The replica goes first: a new retention applies before more points arrive, and the replica
 * accepts either port anyway. Items that left the paired states meanwhile (disabled, failed
 * over) are skipped with their state in the step's result: their next pairing reads the policy.
 */
import { REPAIRABLE_STATES, type ItemRecord } from '../domain/protection.ts';
import type { JobType } from '../jobs/job-types.ts';
import { itemSteps, perVmJob } from './item-steps.ts';
import { PROTECTION_JOB, type ProtectionService } from './protection-service.ts';

export function policyApplyJobType(svc: ProtectionService): JobType<unknown> {
  const { policyOf, hostCmd, sourceRecordOf, replicaPairing, primaryPairing } = itemSteps(svc);
  const current = async (vaultId: string, vm: string): Promise<ItemRecord | undefined> => {
    const item = await svc.items.require(vaultId, vm);
    return REPAIRABLE_STATES.includes(item.state) && item.placement !== null ? item : undefined;
  };
  return perVmJob(PROTECTION_JOB.policyApply, ['repair-replica', 'repair-primary'], {
    'repair-replica': async (ctx, vm) => {
      const item = await current(ctx.input.vaultId, vm);
      if (item?.placement == null) {
        return { skipped: (await svc.items.get(ctx.input.vaultId, vm))?.state ?? 'gone' };
      }
      const policy = await policyOf(item);
      const pairVm = replicaPairing(item, policy, await sourceRecordOf(item), item.placement.nics);
      await hostCmd(ctx, item, 'target', { pairVm });
      return { host: item.targetHost, retentionHours: policy.retentionHours };
    },
    'repair-primary': async (ctx, vm) => {
      const item = await current(ctx.input.vaultId, vm);
      if (item === undefined) {
        return { skipped: (await svc.items.get(ctx.input.vaultId, vm))?.state ?? 'gone' };
      }
      const policy = await policyOf(item);
      const pairVm = await primaryPairing(item, policy);
      await hostCmd(ctx, item, 'source', { pairVm });
      return {
        host: item.sourceHost,
        peer: pairVm.peerAddress,
        channel: pairVm.ticketAuth ? 'ticket' : 'certificate',
        epoch: item.epoch,
      };
    },
  }) as unknown as JobType<unknown>;
}
