/**
 * The replica side of replication on this host: the replication port (8084) wired to one
 * recovery store per VM paired here as `replica`.
 *
 * Authorisation (ARCHITECTURE.md "Trust"): a stream for VM `v` is served only when `v` is
 * paired here as replica and the caller's verified identity is exactly the pairing's peer
 * (`secondsite://<vault>/host/<peerHost>`); a segment is applied only under the pairing's
 * epoch (a stream of another epoch gets SS_NOT_PAIRED, which senders do not retry).
 *
 * Stores open lazily on first use, one at a time per VM, and stay open until shutdown or
 * until the VM is unpaired (`retire`, which also keeps them from opening again while the
 * unpairing runs). Their disks are the VM's own disk files: a replica VM is never started, so
 * the store is their only writer. Points are kept for the pairing's retention hours.
 *
 * States: created → listening (run) → closed (shutdown).
 */
import type { RevocationCheck } from '../../common/revocation.ts';
import { closeSync, ftruncateSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { isAllZero } from '../../../common/bytes/all-zero.ts';
import { SecondsiteError, badInput } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { Clock } from '../../../common/time/clock.ts';
import { channelOf, type Caller } from '../../common/caller.ts';
import type { RecoveryPointRecord } from '../journal/types.ts';
import { openReplicaStore } from '../recovery/replica-store.ts';
import type { ReplicaStore } from '../recovery/types.ts';
import { InitialCopyTarget } from '../sync/initial-copy-target.ts';
import { ResyncTarget } from '../sync/resync-target.ts';
import type { StreamContext } from '../transport/ship-server.ts';
import {
  createReplicationServer,
  type ReplicationServer,
  type TlsSource,
} from '../transport/replication-server.ts';
import { RawDisk } from '../vm/raw-disk.ts';
import { diskPath, type VmConfig } from '../vm/vm-config.ts';
import { peerUri, type Pairing } from './pairing.ts';
import type { HelloFields } from './protocol.ts';

/** What the receiver needs to know about this host's VMs (the VM manager). */
export interface ReceiverVms {
  /** The VM's config and pairing, or undefined when there is no such VM. */
  find(name: string): { config: VmConfig; pairing?: Pairing; vmDir: string } | undefined;
}

export interface ReceiverOptions {
  readonly vms: ReceiverVms;
  readonly clock: Clock;
  readonly log: Logger;
  /** Points older than this are pruned after each apply. @default 24 */
  readonly retentionHours?: number;
  /** Points to pin when a VM's store opens (failover views that outlived a restart). */
  readonly pins?: (vm: string) => Readonly<Record<string, string>>;
}

/** Bytes per read when copying a point to a file: large sequential reads, bounded memory. */
const READ_CHUNK = 8 * 1024 * 1024;

export function replicaDir(vmDir: string): string {
  return join(vmDir, 'replica');
}

/** The initial copy's watermark (initial-copy-target.ts), inside the replica folder. */
export function copyDir(vmDir: string): string {
  return join(replicaDir(vmDir), 'copy');
}

interface OpenStore {
  readonly store: ReplicaStore;
  readonly disks: RawDisk[];
  readonly paths: string[];
}

export class Receiver {
  private readonly stores = new Map<string, Promise<OpenStore>>();
  private readonly lastApplyAt = new Map<string, number>();
  /** Segments applied per VM since start, by channel (a policy's auth change moves them). */
  private readonly via = new Map<string, { certificate: number; ticket: number }>();
  /**
   * Block bytes of the cycles' chunks received per VM since this agent started, counted as
   * they arrive (a resent segment again; initial copies and resyncs not at all): what
   * replication carried here (R22), raw and on the wire.
   */
  private readonly received = new Map<string, { rawBytes: number; wireBytes: number }>();
  /** VMs being unpaired: their stores may not open. */
  private readonly retired = new Set<string>();
  private readonly log: Logger;

  constructor(private readonly o: ReceiverOptions) {
    this.log = o.log.child({ component: 'receiver' });
  }

  /** The replication server on `address:port` with this receiver behind it. */
  server(opts: {
    address: string;
    port: number;
    tls: TlsSource;
    /** The vault's revoked credentials: refused on both ports, per call and per segment. */
    revoked?: RevocationCheck;
    /** The Hello this host answers with. @default LOCAL_HELLO */
    local?: HelloFields;
  }): ReplicationServer {
    return createReplicationServer({
      ...opts,
      clock: this.o.clock,
      log: this.o.log,
      authorize: (caller, vmId) => this.authorized(caller, vmId),
      handlers: {
        lastApplied: async (vmId) => (await this.store(vmId)).lastApplied,
        newestPointId: async (vmId) => (await this.store(vmId)).latest()?.id ?? '',
        applySegment: async (ctx, seg) => {
          this.checkEpoch(ctx);
          const store = await this.store(ctx.vmId);
          const outcome = await store.apply(seg);
          if (outcome === 'applied') {
            this.lastApplyAt.set(ctx.vmId, this.o.clock.now());
            const via = this.via.get(ctx.vmId) ?? { certificate: 0, ticket: 0 };
            via[channelOf(ctx.caller)] += 1;
            this.via.set(ctx.vmId, via);
            await store.prune();
          }
          return outcome;
        },
        chunkReceived: (vm, rawBytes, wireBytes) => {
          const n = this.received.get(vm) ?? { rawBytes: 0, wireBytes: 0 };
          this.received.set(vm, {
            rawBytes: n.rawBytes + rawBytes,
            wireBytes: n.wireBytes + wireBytes,
          });
        },
        stageUndo: async (ctx, seq, opts) => {
          this.checkEpoch(ctx);
          return (await this.store(ctx.vmId)).stageUndo(seq, opts);
        },
        initialCopyTarget: (ctx) => this.copyTarget(ctx),
        resyncTarget: (ctx) => this.resyncTarget(ctx),
      },
    });
  }

  /** A stream is served only under the pairing's epoch. */
  private checkEpoch(ctx: StreamContext): void {
    const pairing = this.replicaPairing(ctx.vmId);
    if (ctx.epoch !== pairing.epoch) {
      throw new SecondsiteError(
        'SS_NOT_PAIRED',
        `VM ${ctx.vmId} is paired under epoch ${pairing.epoch}, not ${ctx.epoch}`,
        { vm: ctx.vmId, epoch: ctx.epoch, pairedEpoch: pairing.epoch },
      );
    }
  }

  /** The VM's InitialCopyTarget over its replica disks and store (one per copy stream). */
  private async copyTarget(ctx: StreamContext): Promise<InitialCopyTarget> {
    this.checkEpoch(ctx);
    await this.store(ctx.vmId);
    const { store, disks, paths } = await this.stores.get(ctx.vmId)!;
    const found = this.o.vms.find(ctx.vmId);
    if (!found) throw new SecondsiteError('SS_NOT_FOUND', `no VM named ${ctx.vmId} on this host`);
    const dir = copyDir(found.vmDir);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return new InitialCopyTarget({ dir, disks, diskPaths: paths, store, log: ctx.log });
  }

  /** The VM's ResyncTarget over its replica disks and store (one per resync stream). */
  private async resyncTarget(ctx: StreamContext): Promise<ResyncTarget> {
    this.checkEpoch(ctx);
    await this.store(ctx.vmId);
    const { store, disks } = await this.stores.get(ctx.vmId)!;
    return new ResyncTarget({ store, disks, log: ctx.log });
  }

  private authorized(caller: Caller, vmId: string): boolean {
    const found = this.o.vms.find(vmId);
    const p = found?.pairing;
    return p?.role === 'replica' && p.vault === caller.vault && peerUri(p) === caller.uri;
  }

  private replicaPairing(vm: string): Pairing {
    const p = this.o.vms.find(vm)?.pairing;
    if (p?.role !== 'replica') {
      throw new SecondsiteError('SS_NOT_PAIRED', `VM ${vm} is not paired as a replica here`, {
        vm,
      });
    }
    return p;
  }

  /** The VM's store, opened on first use. */
  async store(vm: string): Promise<ReplicaStore> {
    let opening = this.stores.get(vm);
    if (!opening) {
      const found = this.o.vms.find(vm);
      if (!found) throw new SecondsiteError('SS_NOT_FOUND', `no VM named ${vm} on this host`);
      const pairing = this.replicaPairing(vm);
      if (this.retired.has(vm)) {
        throw new SecondsiteError('SS_NOT_PAIRED', `VM ${vm} is being unpaired`, { vm });
      }
      opening = openStore(
        found.config,
        found.vmDir,
        { ...this.o, retentionHours: pairing.retentionHours ?? this.o.retentionHours ?? 24 },
        this.o.pins?.(vm),
      );
      this.stores.set(vm, opening);
      opening.catch(() => this.stores.delete(vm));
    }
    return (await opening).store;
  }

  async points(vm: string): Promise<RecoveryPointRecord[]> {
    return (await this.store(vm)).points();
  }

  /** Status of a replica VM for `host vm list`. */
  async status(vm: string): Promise<{
    lastApplied: number;
    lastApplyAt?: number;
    segmentsVia: { certificate: number; ticket: number };
    received: { rawBytes: number; wireBytes: number };
  }> {
    const store = await this.store(vm);
    return {
      lastApplied: store.lastApplied,
      lastApplyAt: this.lastApplyAt.get(vm),
      segmentsVia: { ...(this.via.get(vm) ?? { certificate: 0, ticket: 0 }) },
      received: this.received.get(vm) ?? { rawBytes: 0, wireBytes: 0 },
    };
  }

  /** Writes disk `disk` as it was at `pointId` to `outPath`; resolves with the bytes written. */
  async readToFile(vm: string, disk: number, pointId: string, outPath: string): Promise<number> {
    const store = await this.store(vm);
    const size = this.o.vms.find(vm)?.config.disks[disk]?.sizeBytes;
    if (size === undefined) throw badInput('disk', `VM ${vm} has no disk ${disk}`);
    const fd = openSync(outPath, 'w', 0o600);
    try {
      ftruncateSync(fd, size); // sparse: all-zero reads are skipped below
      for (let at = 0; at < size; at += READ_CHUNK) {
        const len = Math.min(READ_CHUNK, size - at);
        const bytes = store.read(disk, at, len, pointId);
        if (!isAllZero(bytes)) writeSync(fd, bytes, 0, len, at);
      }
    } finally {
      closeSync(fd);
    }
    return size;
  }

  /**
   * Unpairing `vm`: closes its store and keeps it closed until `release(vm)` (after the
   * pairing or the VM is gone), so a stream arriving meanwhile cannot reopen it.
   */
  async retire(vm: string): Promise<void> {
    this.retired.add(vm);
    await this.closeVm(vm);
  }

  release(vm: string): void {
    this.retired.delete(vm);
  }

  /** Closes the VM's store (before it is unpaired or deleted). */
  async closeVm(vm: string): Promise<void> {
    const opening = this.stores.get(vm);
    this.stores.delete(vm);
    if (!opening) return;
    const { store, disks } = await opening;
    await store.close();
    await Promise.all(disks.map((d) => d.close()));
  }

  async shutdown(): Promise<void> {
    await Promise.all([...this.stores.keys()].map((vm) => this.closeVm(vm).catch(() => undefined)));
  }
}

async function openStore(
  config: VmConfig,
  vmDir: string,
  o: ReceiverOptions,
  pinned?: Readonly<Record<string, string>>,
): Promise<OpenStore> {
  const paths = config.disks.map((d) => diskPath(vmDir, d));
  const disks = paths.map((p) => RawDisk.open(p));
  try {
    const store = await openReplicaStore({
      dir: replicaDir(vmDir),
      vmId: config.name,
      disks,
      diskPaths: paths,
      clock: o.clock,
      log: o.log.child({ vm: config.name }),
      retentionHours: o.retentionHours ?? 24,
      ...(pinned ? { pinned } : {}),
    });
    return { store, disks, paths };
  } catch (e) {
    await Promise.all(disks.map((d) => d.close()));
    throw e;
  }
}
