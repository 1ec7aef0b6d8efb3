/**
 * What the host does for each provider command (host_control.proto step 4), as a table keyed
 * by the command's kind, applied at most once per id (command-log.ts). Commands run one at a
 * time, so a resend racing its original cannot apply it twice.
 *
 * The log keeps each id's outcome (applied, or the error); a resend gets that outcome again
 * with the VM as it is now. list_points only reads, so it is answered afresh each time and not
 * logged (a retained-point list can be long). The replication commands go through the same
 * operations as the local admin API (replication/replication-ops.ts).
 */
import { z } from 'zod';
import { SecondsiteError, badInput, isSecondsiteError } from '../../../common/errors/errors.ts';
import { errorDetailOf } from '../../../common/wire/agent-channel-messages.ts';
import type {
  CreateHostVmCommand,
  HostCommand,
  HostCommandResult,
} from '../../../common/wire/host-control-messages.ts';
import { pointToMsg } from '../control/host-local-mapping.ts';
import type { PairRequest, ReplicationOps } from '../replication/replication-ops.ts';
import type { VmManager } from '../vm/vm-manager.ts';
import type { Answer, HostCommandLog } from './command-log.ts';
import { hostVmMsg } from './host-inventory.ts';

/** What a handler adds to the answer besides the outcome. */
type Extra = Pick<HostCommandResult, 'points'> & { vm?: string };
type Handler = (c: HostCommand) => Promise<Extra>;

/** Creates the VM unless it exists (an answer lost in a crash), then starts it if asked. */
async function createVm(vms: VmManager, c: CreateHostVmCommand): Promise<void> {
  const exists = vms.list().some((v) => v.config.name === c.name);
  if (!exists) {
    await vms.createVm({
      name: c.name,
      diskSizes: c.disks.map((d) => Number(d.sizeBytes)),
      nics: c.nics.map((n) => ({ network: n.network, subnet: n.subnet })),
    });
  }
  if (c.start) await vms.startVm(c.name);
}

const digits = z.string().regex(/^\d+$/, 'must be a whole number');
/** An empty network: the adapter is not connected (placement found no mapped network). */
const nic = z.object({ network: z.string(), subnet: z.string() });
const pairSchema = z.object({
  name: z.string(),
  role: z.enum(['primary', 'replica']),
  peerHost: z.string().min(1),
  peerAddress: z.string(),
  epoch: digits,
  compression: z.boolean(),
  disks: z.array(z.object({ sizeBytes: digits, path: z.string() })),
  copyFrequencySeconds: z.number().int(),
  appConsistentHours: z.number().int(),
  retentionHours: z.number().int().min(0),
  nics: z.array(nic),
  startInitialCopy: z.boolean(),
});

function parse<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const r = schema.safeParse(body ?? {});
  if (!r.success) {
    const issue = r.error.issues[0];
    throw badInput(`${what}.${issue?.path.join('.') ?? ''}`, issue?.message ?? 'malformed');
  }
  return r.data;
}

/** pair_vm as the operations take it: only the fields of the command's role. */
export function pairRequest(body: unknown, vault: string): PairRequest {
  const c = parse(pairSchema, body, 'pairVm');
  const common = {
    name: c.name,
    role: c.role,
    peerHost: c.peerHost,
    peerAddress: c.peerAddress,
    vault,
    epoch: Number(c.epoch) || 1,
    compression: c.compression,
  };
  if (c.role === 'primary') {
    return {
      ...common,
      protection: {
        copyFrequencySeconds: c.copyFrequencySeconds,
        appConsistentHours: c.appConsistentHours,
      },
      // Not now (scheduled or offline initial replication): paired paused until resumed.
      paused: !c.startInitialCopy,
    };
  }
  return {
    ...common,
    diskSizes: c.disks.map((d) => Number(d.sizeBytes)),
    diskFolders: c.disks.map((d) => d.path),
    nics: c.nics,
    ...(c.retentionHours > 0 ? { retentionHours: c.retentionHours } : {}),
  };
}

export interface HostCommands {
  /** Applies a command once; a known id gets its recorded outcome with the VM as it is now. */
  run(command: HostCommand): Promise<HostCommandResult>;
  /** The outcome only: null when applied, else the error. */
  apply(command: HostCommand): Promise<Answer>;
}

/** Which VM a command is about (for the answer's `vm`). */
function vmNameOf(c: HostCommand): string | undefined {
  return (
    c.createVm?.name ??
    c.pairVm?.name ??
    c.unpairVm?.name ??
    c.pauseVm?.name ??
    c.resyncVm?.name ??
    c.listPoints?.name
  );
}

function replicationHandlers(ops: ReplicationOps, vault: string): Record<string, Handler> {
  const named = (body: { name?: string } | undefined, what: string): string => {
    if (!body?.name) throw badInput(`${what}.name`, 'must name a VM');
    return body.name;
  };
  return {
    pairVm: async (c) => ({ vm: (await ops.pair(pairRequest(c.pairVm, vault))).config.name }),
    unpairVm: async (c) => {
      await ops.unpair(named(c.unpairVm, 'unpairVm'), Boolean(c.unpairVm?.deleteReplica));
      return {};
    },
    pauseVm: async (c) => {
      await ops.setPaused(named(c.pauseVm, 'pauseVm'), Boolean(c.pauseVm?.paused));
      return {};
    },
    resyncVm: async (c) => {
      await ops.resync(named(c.resyncVm, 'resyncVm'));
      return {};
    },
    listPoints: async (c) => ({
      points: (await ops.points(named(c.listPoints, 'listPoints'))).map(pointToMsg),
    }),
  };
}

export function hostCommands(
  vms: VmManager,
  log: HostCommandLog,
  replication?: { ops: ReplicationOps; vault: string },
): HostCommands {
  const handlers: Record<string, Handler> = {
    createVm: async (c) => {
      if (c.createVm === undefined) throw new SecondsiteError('SS_PROTOCOL', 'empty create_vm');
      await createVm(vms, c.createVm);
      return {};
    },
    ...(replication ? replicationHandlers(replication.ops, replication.vault) : {}),
  };
  /** The outcome with the command's VM as it is now (absent once deleted). */
  const answer = async (
    command: HostCommand,
    error: Answer,
    extra: Extra,
  ): Promise<HostCommandResult> => {
    const name = extra.vm ?? vmNameOf(command);
    const view = name === undefined ? undefined : vms.list().find((v) => v.config.name === name);
    return {
      commandId: command.commandId,
      error,
      ...(extra.points ? { points: extra.points } : {}),
      ...(view ? { vm: await hostVmMsg(view, replication?.ops) } : {}),
    };
  };
  let tail: Promise<unknown> = Promise.resolve();
  const run = (command: HostCommand): Promise<HostCommandResult> => {
    const result = tail.then(async (): Promise<HostCommandResult> => {
      const known = log.answered(command.commandId);
      if (known !== undefined) return answer(command, known, {});
      let error: Answer = null;
      let extra: Extra = {};
      try {
        const handler = command.kind === undefined ? undefined : handlers[command.kind];
        if (handler === undefined) {
          throw new SecondsiteError('SS_PROTOCOL', `unknown command ${command.kind ?? '(empty)'}`);
        }
        extra = await handler(command);
      } catch (e) {
        error = errorDetailOf(
          isSecondsiteError(e) ? e : new SecondsiteError('SS_INTERNAL', String(e)),
        );
      }
      if (command.kind !== 'listPoints') await log.record(command.commandId, error);
      return answer(command, error, extra);
    });
    tail = result.catch(() => undefined);
    return result;
  };
  return {
    run,
    apply: async (command) => (await run(command)).error ?? null,
  };
}
