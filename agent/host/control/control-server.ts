/**
 * The local admin API (HostLocal, proto/secondsite/v1/host_local.proto) over gRPC on
 * <data>/control.sock.
 *
 * Insecure channel credentials are acceptable here only because the transport is a unix
 * socket of mode 0600 inside a 0700 data folder: the kernel lets only the agent's own user
 * (and root) connect, and nothing leaves the machine. Never bind this service to TCP.
 *
 * Every method goes through one adapter (STYLE.md rule 5): validate the request, call the VM
 * manager (replication operations through replication-ops.ts, the code path the provider's
 * relayed commands take too), map errors with common/wire/grpc-errors.ts, log once.
 * States: idle → serving (run) → closed (shutdown).
 */
import { chmodSync, rmSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { z } from 'zod';
import { SecondsiteError, badInput } from '../../../common/errors/errors.ts';
import type { Service } from '../../../common/lifecycle/lifecycle.ts';
import type { Logger } from '../../../common/log/log.ts';
import { loadPackageDefinition } from '../../../common/proto/load.ts';
import { toGrpcError } from '../../../common/wire/grpc-errors.ts';
import type { ReplicationOps } from '../replication/replication-ops.ts';
import type { VmManager, VmView } from '../vm/vm-manager.ts';
import { checkSocketPath, layout } from '../vm/layout.ts';
import { isPolicyFrequency } from '../vm/vm-config.ts';
import { pointToMsg, vmToMsg } from './host-local-mapping.ts';

const vmRef = z.object({ name: z.string() });
const createVm = z.object({
  name: z.string(),
  disks: z.array(z.object({ sizeBytes: z.string().regex(/^\d+$/) })),
  nics: z.array(z.object({ network: z.string(), subnet: z.string() })),
});
/** A local protect takes the policy frequencies only (the manager allows a scaled pairing's). */
const protectVm = z.object({
  name: z.string(),
  copyFrequencySeconds: z
    .number()
    .refine(isPolicyFrequency, 'must be 30s, 5m or 15m (30, 300, 900)'),
  appConsistentHours: z.number().int(),
});
const cut = z.object({ name: z.string(), appConsistent: z.boolean() });
const pair = z.object({
  name: z.string(),
  role: z.enum(['primary', 'replica']),
  peerHost: z.string().min(1),
  peerAddress: z.string().regex(/^[^\s]+:\d{1,5}$/, 'must be HOST:PORT'),
  vault: z.string().min(1),
  epoch: z.string().regex(/^\d+$/),
  compression: z.boolean(),
  disks: z.array(z.object({ sizeBytes: z.string().regex(/^\d+$/) })),
});
const readPoint = z.object({
  name: z.string(),
  disk: z.number().int().min(0),
  pointId: z.string().min(1),
  outPath: z.string().startsWith('/', 'must be an absolute path'),
});

/** What the control API asks of replication (agent/host/replication/replication-host.ts). */
export interface ControlReplication {
  readToFile(vm: string, disk: number, pointId: string, outPath: string): Promise<number>;
}

type Handler = (req: unknown) => Promise<unknown>;

function parse<T>(schema: z.ZodType<T>, req: unknown): T {
  const r = schema.safeParse(req);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw badInput(issue?.path.join('.') || 'request', issue?.message ?? 'malformed');
  }
  return r.data;
}

function handlers(
  vms: VmManager,
  dataDir: string,
  ops: ReplicationOps,
  repl: ControlReplication | undefined,
): Record<string, Handler> {
  const msgOf = vmToMsg(dataDir);
  const toMsg = async (v: VmView) => msgOf(v, await ops.status(v));
  return {
    ...replicationHandlers(vms, ops, repl, toMsg),
    CreateVm: async (req) => {
      const r = parse(createVm, req);
      const view = await vms.createVm({
        name: r.name,
        diskSizes: r.disks.map((d) => Number(d.sizeBytes)),
        nics: r.nics,
      });
      return toMsg(view);
    },
    StartVm: async (req) => toMsg(await vms.startVm(parse(vmRef, req).name)),
    StopVm: async (req) => toMsg(await vms.stopVm(parse(vmRef, req).name)),
    ProtectVm: async (req) => {
      const { name, ...p } = parse(protectVm, req);
      return toMsg(await vms.protectVm(name, p));
    },
    UnprotectVm: async (req) => toMsg(await vms.unprotectVm(parse(vmRef, req).name)),
    CutRecoveryPoint: async (req) => {
      const r = parse(cut, req);
      return pointToMsg(
        await vms.cut(r.name, r.appConsistent ? 'app-consistent' : 'crash-consistent'),
      );
    },
    ListVms: async () => ({ vms: await Promise.all(vms.list().map(toMsg)) }),
    ListRecoveryPoints: async (req) => {
      const points = await ops.points(parse(vmRef, req).name);
      return { points: points.map(pointToMsg) };
    },
  };
}

function replicationHandlers(
  vms: VmManager,
  ops: ReplicationOps,
  repl: ControlReplication | undefined,
  toMsg: (v: VmView) => Promise<unknown>,
): Record<string, Handler> {
  return {
    PairVm: async (req) => {
      const r = parse(pair, req);
      const view = await ops.pair({
        ...r,
        epoch: Number(r.epoch) || 1,
        diskSizes: r.disks.map((d) => Number(d.sizeBytes)),
      });
      return toMsg(view);
    },
    ReadPoint: async (req) => {
      const r = parse(readPoint, req);
      if (vms.pairingOf(r.name)?.role !== 'replica' || !repl) {
        throw new SecondsiteError('SS_CONFLICT', `VM ${r.name} is not a replica on this host`, {
          vm: r.name,
        });
      }
      return { bytes: String(await repl.readToFile(r.name, r.disk, r.pointId, r.outPath)) };
    },
  };
}

function adapt(name: string, fn: Handler, log: Logger): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    fn(call.request).then(
      (reply) => {
        log.debug({ method: name }, 'control call');
        callback(null, reply);
      },
      (e: unknown) => {
        const err = toGrpcError(e);
        log.info(
          { method: name, code: err.metadata?.get('ss-code')[0], msg: err.details },
          'control call failed',
        );
        callback(err);
      },
    );
  };
}

export function createControlServer(opts: {
  dataDir: string;
  vms: VmManager;
  ops: ReplicationOps;
  log: Logger;
  replication?: ControlReplication;
}): Service {
  const log = opts.log.child({ component: 'control' });
  const socketPath = checkSocketPath(layout.controlSocket(opts.dataDir));
  const server = new grpc.Server();
  const pkg = grpc.loadPackageDefinition(loadPackageDefinition()) as unknown as {
    secondsite: { v1: { HostLocal: grpc.ServiceClientConstructor } };
  };
  const impl: grpc.UntypedServiceImplementation = {};
  const table = handlers(opts.vms, opts.dataDir, opts.ops, opts.replication);
  for (const [name, fn] of Object.entries(table)) {
    impl[name] = adapt(name, fn, log);
  }
  server.addService(pkg.secondsite.v1.HostLocal.service, impl);
  let stopped: () => void = () => undefined;

  return {
    async run(signal: AbortSignal): Promise<void> {
      rmSync(socketPath, { force: true }); // a stale socket from a crash; the data lock is ours
      await new Promise<void>((resolve, reject) =>
        server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (e) =>
          e ? reject(e) : resolve(),
        ),
      );
      chmodSync(socketPath, 0o600);
      log.info({ socket: socketPath }, 'local control API listening');
      await new Promise<void>((resolve) => {
        stopped = resolve;
        if (signal.aborted) resolve();
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    },
    async shutdown(): Promise<void> {
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      rmSync(socketPath, { force: true });
      stopped();
    },
  };
}
