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
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { SecondsiteError, badInput, isSecondsiteError } from '../../../common/errors/errors.ts';
import { errorDetailOf } from '../../../common/wire/agent-channel-messages.ts';
import { settingFromMsg } from '../../../common/wire/bandwidth-setting.ts';
import type {
  CreateHostVmCommand,
  HostCommand,
  HostCommandResult,
} from '../../../common/wire/host-control-messages.ts';
import type { RevokedList } from '../../common/revocation.ts';
import { pointToMsg } from '../control/host-local-mapping.ts';
import type { FailoverOps, FailoverOutcome } from '../failover/failover-ops.ts';
import type { PairRequest, ReplicationOps } from '../replication/replication-ops.ts';
import type { VmManager } from '../vm/vm-manager.ts';
import type { Answer, HostCommandLog } from './command-log.ts';
import { hostVmMsg } from './host-inventory.ts';

/** What a handler adds to the answer besides the outcome. */
type Extra = Pick<HostCommandResult, 'points' | 'failover'> & { vm?: string };
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
  /** '' (or absent): decide from the disks; 'resync' / 'in-sync': the peer's replica exists. */
  baseline: z.enum(['', 'resync', 'in-sync']).optional(),
  /** Primary: tickets on the peer's ticket port instead of certificates. */
  ticketAuth: z.boolean().optional(),
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
      ...(c.ticketAuth ? { ticketAuth: true } : {}),
      ...(c.baseline ? { existingReplica: c.baseline } : {}),
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
    c.exportVm?.name ??
    c.importVm?.name ??
    c.seedVm?.name ??
    c.listPoints?.name ??
    failoverVmName(c)
  );
}

/** Failover commands (20-26), applied by agent/host/failover/failover-ops.ts. */
const FAILOVER_KINDS = [
  'testFailover',
  'cleanupTest',
  'prepareFailover',
  'failover',
  'changePoint',
  'commitFailover',
  'fence',
] as const;

function failoverVmName(c: HostCommand): string | undefined {
  for (const k of FAILOVER_KINDS) {
    const name = (c[k] as { name?: string } | undefined)?.name;
    if (name) return name;
  }
  return undefined;
}

const failoverSchema = z.object({
  name: z.string().min(1),
  point: z.string(),
  epoch: digits,
  nics: z.array(nic),
  digests: z.boolean(),
});
const testSchema = z.object({ name: z.string().min(1), point: z.string(), nics: z.array(nic) });
const fenceSchema = z.object({ name: z.string().min(1), epoch: digits });
const refSchema = z.object({ name: z.string().min(1) });

export function failoverResultMsg(o: FailoverOutcome): NonNullable<HostCommandResult['failover']> {
  return {
    point: o.point ? pointToMsg(o.point) : null,
    diskDigests: [...o.digests],
    unshippedBytes: String(o.unshippedBytes),
    testVm: o.testVm,
  };
}

function failoverHandlers(f: FailoverOps): Record<string, Handler> {
  const done = (name: string, o: FailoverOutcome): Extra => ({
    vm: name,
    failover: failoverResultMsg(o),
  });
  const request = (body: unknown, what: string) => {
    const c = parse(failoverSchema, body, what);
    return { ...c, epoch: Number(c.epoch) };
  };
  return {
    testFailover: async (c) => {
      const t = parse(testSchema, c.testFailover, 'testFailover');
      return done(t.name, await f.testFailover(t.name, t.point, t.nics));
    },
    cleanupTest: async (c) => {
      const { name } = parse(refSchema, c.cleanupTest, 'cleanupTest');
      return done(name, await f.cleanupTest(name));
    },
    prepareFailover: async (c) => {
      const { name } = parse(refSchema, c.prepareFailover, 'prepareFailover');
      return done(name, await f.prepare(name));
    },
    failover: async (c) => {
      const r = request(c.failover, 'failover');
      return done(r.name, await f.failover(r));
    },
    changePoint: async (c) => {
      const r = request(c.changePoint, 'changePoint');
      return done(r.name, await f.changePoint(r));
    },
    commitFailover: async (c) => {
      const { name } = parse(refSchema, c.commitFailover, 'commitFailover');
      return done(name, await f.commit(name));
    },
    fence: async (c) => {
      const r = parse(fenceSchema, c.fence, 'fence');
      return done(r.name, await f.fence(r.name, Number(r.epoch)));
    },
  };
}

/** A resent failover command: its outcome from the VM's failover state now. */
function failoverReplay(f: FailoverOps | undefined, c: HostCommand): Extra {
  const kind = c.kind ?? '';
  const name = failoverVmName(c);
  if (!f || !name || !(FAILOVER_KINDS as readonly string[]).includes(kind)) return {};
  const o = f.outcome(kind, name);
  return o ? { failover: failoverResultMsg(o) } : {};
}

/** export_vm / import_vm: a VM, an absolute folder, an export id (import: may be empty). */
function offlineTransfer(
  body: { name?: string; path?: string; exportId?: string } | undefined,
  what: 'exportVm' | 'importVm',
): { name: string; path: string; exportId: string } {
  if (!body?.name) throw badInput(`${what}.name`, 'must name a VM');
  if (!body.path || !isAbsolute(body.path))
    throw badInput(`${what}.path`, 'must be an absolute folder');
  if (what === 'exportVm' && !body.exportId)
    throw badInput(`${what}.exportId`, 'must name the export');
  return { name: body.name, path: body.path, exportId: body.exportId ?? '' };
}

function replicationHandlers(ops: ReplicationOps, vault: string): Record<string, Handler> {
  const named = (body: { name?: string } | undefined, what: string): string => {
    if (!body?.name) throw badInput(`${what}.name`, 'must name a VM');
    return body.name;
  };
  return {
    pairVm: async (c) => {
      const req = pairRequest(c.pairVm, vault);
      const baseline = c.pairVm?.baseline;
      if (ops.failover && (baseline === 'in-sync' || baseline === 'resync')) {
        // Reverse replication: a former primary may become the replica (failover-ops.ts).
        const r = await ops.failover.reverse(req, baseline);
        const none = { digests: [], unshippedBytes: r.discardedBytes, testVm: '' };
        return { vm: r.view.config.name, failover: failoverResultMsg(none) };
      }
      return { vm: (await ops.pair(req)).config.name };
    },
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
    exportVm: async (c) => {
      const e = offlineTransfer(c.exportVm, 'exportVm');
      await ops.exportOffline(e.name, e.path, e.exportId);
      return {};
    },
    importVm: async (c) => {
      const i = offlineTransfer(c.importVm, 'importVm');
      await ops.importOffline(i.name, i.path, i.exportId);
      return {};
    },
    seedVm: async (c) => {
      const name = named(c.seedVm, 'seedVm');
      if (!c.seedVm?.exportId) throw badInput('seedVm.exportId', 'must name the export');
      await ops.seedOffline(name, c.seedVm.exportId);
      return {};
    },
    listPoints: async (c) => ({
      points: (await ops.points(named(c.listPoints, 'listPoints'))).map(pointToMsg),
    }),
    // R22: the replication bandwidth cap, windows and VM priorities (kept in bandwidth.json).
    setBandwidth: async (c) => {
      if (!c.setBandwidth) throw badInput('setBandwidth', 'is empty');
      if (!ops.bandwidth)
        throw new SecondsiteError('SS_CONFLICT', 'this host has no bandwidth control');
      ops.bandwidth.set(settingFromMsg(c.setBandwidth, 'setBandwidth'));
      return {};
    },
    // Issue #7: the vault's revoked host credentials (kept in revoked.json); a list not newer
    // than the one held changes nothing, so resends and late duplicates are harmless.
    setRevoked: async (c) => {
      if (!ops.revoked) throw new SecondsiteError('SS_CONFLICT', 'this host keeps no revoked list');
      ops.revoked.replace(revokedList(c.setRevoked));
      return {};
    },
  };
}

const revokedSchema = z.object({
  version: digits,
  identities: z.array(z.string().min(1).max(300)).max(10_000),
  fingerprints: z.array(z.string().min(1).max(200)).max(10_000),
});

/** set_revoked as the revocation list takes it. */
function revokedList(body: unknown): RevokedList {
  const l = parse(revokedSchema, body, 'setRevoked');
  return { version: Number(l.version), identities: l.identities, fingerprints: l.fingerprints };
}

export function hostCommands(
  vms: VmManager,
  log: HostCommandLog,
  replication?: { ops: ReplicationOps; vault: string },
  /** Pins and installs the provider's trust bundle (provider-pins.ts); absent: refused. */
  trust?: (bundlePem: string) => Promise<void>,
): HostCommands {
  const handlers: Record<string, Handler> = {
    setTrustBundle: async (c) => {
      if (!c.setTrustBundle?.bundlePem) throw badInput('setTrustBundle.bundlePem', 'is empty');
      if (!trust) throw new SecondsiteError('SS_CONFLICT', 'this host keeps no provider pins');
      await trust(c.setTrustBundle.bundlePem);
      return {};
    },
    createVm: async (c) => {
      if (c.createVm === undefined) throw new SecondsiteError('SS_PROTOCOL', 'empty create_vm');
      await createVm(vms, c.createVm);
      return {};
    },
    ...(replication ? replicationHandlers(replication.ops, replication.vault) : {}),
    ...(replication?.ops.failover ? failoverHandlers(replication.ops.failover) : {}),
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
      ...(extra.failover ? { failover: extra.failover } : {}),
    };
  };
  let tail: Promise<unknown> = Promise.resolve();
  const run = (command: HostCommand): Promise<HostCommandResult> => {
    const result = tail.then(async (): Promise<HostCommandResult> => {
      const known = log.answered(command.commandId);
      if (known !== undefined) {
        const replay = known === null ? failoverReplay(replication?.ops.failover, command) : {};
        return answer(command, known, replay);
      }
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
