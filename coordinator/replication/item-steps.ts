/**
 * What the per-item job steps share (protection-jobs.ts, policy-apply-job.ts): the per-VM job
 * shape (`<phase>:<vm>` steps), host commands whose ids come from the job, step and epoch (so a
 * step re-run after a restart is the same command and the host applies it once), and the two
 * pair_vm commands an item's hosts receive, built from the item, its policy and the hosts'
 * latest reports.
 */
import { z } from 'zod';
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { HostVmMsg, PairHostVmCommand } from '../../common/wire/host-control-messages.ts';
import type { StepPlan } from '../domain/job.ts';
import { sameServer } from '../domain/mapping.ts';
import type { Placement } from '../domain/placement.ts';
import type { Policy } from '../domain/policy.ts';
import { pairSettings, type ItemRecord } from '../domain/protection.ts';
import type { VmRecord } from '../inventory/vm-inventory.ts';
import type { JobType, StepContext } from '../jobs/job-types.ts';
import { sendHostCommand, type HostCommandBody } from './host-relay.ts';
import type { ProtectionService } from './protection-service.ts';

export const vmsInput = z
  .object({
    vaultId: z.string().min(1),
    vms: z.array(z.string().min(1)).min(1),
    /** replication.enable under an offline policy (R15): where the export goes and comes. */
    offline: z.object({ exportPath: z.string().min(1), importPath: z.string().min(1) }).optional(),
  })
  .strict();
export type VmsInput = z.infer<typeof vmsInput>;

/** "place:VM1" → ["place", "VM1"]. */
export function splitStep(name: string): [string, string] {
  const i = name.indexOf(':');
  return i < 0 ? [name, ''] : [name.slice(0, i), name.slice(i + 1)];
}

/** A job type whose steps are `<phase>:<vm>` for each VM, phases in order per VM. */
export function perVmJob(
  type: string,
  phases: readonly string[] | ((input: VmsInput, vm: string) => readonly StepPlan[]),
  handlers: Record<string, (ctx: StepContext<VmsInput>, vm: string) => Promise<unknown>>,
): JobType<VmsInput> {
  return {
    type,
    input: vmsInput,
    plan: (input) =>
      input.vms.flatMap((vm) =>
        typeof phases === 'function'
          ? phases(input, vm)
          : phases.map((p) => ({ name: `${p}:${vm}` })),
      ),
    handler: (stepName) => {
      const [phase] = splitStep(stepName);
      const h = handlers[phase];
      return h === undefined
        ? undefined
        : (ctx) => h(ctx, splitStep(ctx.job.steps[ctx.stepIndex]?.name ?? '')[1]);
    },
  };
}

export interface ItemSteps {
  policyOf(item: ItemRecord): Promise<Policy>;
  /** A command to the item's source or target host, its id made from the job step. */
  hostCmd(
    ctx: StepContext<{ vaultId: string }>,
    item: ItemRecord,
    side: 'source' | 'target',
    command: HostCommandBody,
    suffix?: string,
  ): Promise<{ vm?: HostVmMsg | null }>;
  /** The source VM as its host last reported it. */
  sourceRecordOf(item: ItemRecord): Promise<VmRecord>;
  /** pair_vm for the replica side: the source's disk sizes in the placed folders. */
  replicaPairing(
    item: ItemRecord,
    policy: Policy,
    source: VmRecord,
    nics: Placement['nics'],
  ): PairHostVmCommand;
  /**
   * pair_vm for the primary side: the policy's auth decides the channel, the target host's
   * reported port for it the address (certificate: its cert port; kerberos: its ticket port,
   * with `ticketAuth`). SS_UNAVAILABLE while the target has not reported that port.
   */
  primaryPairing(item: ItemRecord, policy: Policy): Promise<PairHostVmCommand>;
}

export function itemSteps(svc: ProtectionService): ItemSteps {
  const { deps } = svc;
  return {
    async policyOf(item) {
      const p = await deps.policies.get(item.vaultId, item.policy);
      if (p === undefined) {
        throw new SecondsiteError('SS_NOT_FOUND', `policy "${item.policy}" of ${item.vm} is gone`, {
          policy: item.policy,
        });
      }
      return p;
    },

    hostCmd(ctx, item, side, command, suffix = '') {
      const host = side === 'source' ? item.sourceHost : item.targetHost;
      if (host === null) {
        throw new SecondsiteError('SS_CONFLICT', `${item.vm} has no target host yet`, {
          vm: item.vm,
        });
      }
      const step = ctx.job.steps[ctx.stepIndex]?.name ?? String(ctx.stepIndex);
      return sendHostCommand(deps.hub, {
        vaultId: item.vaultId,
        server: side === 'source' ? item.sourceServer : item.targetServer,
        host,
        commandId: `${ctx.job.id}.${step}.e${item.epoch}${suffix}`,
        command,
        signal: ctx.signal,
      });
    },

    async sourceRecordOf(item) {
      const record = (await deps.vms.hosts(item.vaultId))
        .find((h) => sameServer(h.server, item.sourceServer) && h.host === item.sourceHost)
        ?.vms.find((v) => v.name === item.vm);
      if (record === undefined) {
        throw new SecondsiteError('SS_NOT_FOUND', `${item.vm} is no longer on ${item.sourceHost}`, {
          vm: item.vm,
        });
      }
      return record;
    },

    replicaPairing: (item, policy, source, nics) => ({
      name: item.vm,
      role: 'replica',
      peerHost: item.sourceHost,
      peerAddress: '',
      epoch: String(item.epoch),
      disks: source.disks.map((d) => ({
        sizeBytes: String(d.sizeBytes),
        path: item.placement?.disks.find((p) => p.index === d.index)?.path ?? '',
      })),
      // Not connected (an unmapped network) is an adapter with an empty network.
      nics: nics.map((n) => ({
        network: n.network ?? '',
        subnet: n.network === null ? '' : (n.subnet ?? ''),
      })),
      startInitialCopy: false,
      ...pairSettings(policy, svc.timeScale),
    }),

    async primaryPairing(item, policy) {
      const target = (await deps.vms.hosts(item.vaultId)).find(
        (h) => sameServer(h.server, item.targetServer) && h.host === item.targetHost,
      );
      const port = policy.auth === 'certificate' ? target?.certPort : target?.ticketPort;
      if (target?.address === undefined || target.address === '' || !port) {
        throw new SecondsiteError(
          'SS_UNAVAILABLE',
          `target host ${item.targetHost ?? '?'} has not reported its replication address; ` +
            'check that its host agent runs and is connected to its provider',
          { host: item.targetHost },
        );
      }
      return {
        name: item.vm,
        role: 'primary',
        peerHost: item.targetHost ?? '',
        peerAddress: `${target.address}:${port}`,
        epoch: String(item.epoch),
        disks: [],
        nics: [],
        startInitialCopy: policy.initial.method === 'network',
        ...pairSettings(policy, svc.timeScale),
        // R19: the replica exists at the target: compare hashes, send only what differs.
        ...(item.onboard ? { baseline: 'resync' } : {}),
        // Policy auth "kerberos": tickets from the ticket service, on the target's ticket port.
        ...(policy.auth === 'kerberos' ? { ticketAuth: true } : {}),
      };
    },
  };
}
