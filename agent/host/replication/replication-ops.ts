/**
 * The replication operations on this host's VMs, one code path for both callers: the local
 * admin API (control/control-server.ts: PairVm, ListRecoveryPoints) and the provider's relayed
 * commands (enrolment/host-commands.ts: pair_vm, unpair_vm, pause_vm, resync_vm, list_points).
 *
 * Each operation persists its state change (pairing.json, vm.json, deleted files) before it
 * resolves, and is idempotent for the same input: pairing an identically paired VM, pausing a
 * paused one or unpairing an unpaired one changes nothing. Sequences, and why in this order:
 *  - pair (primary): pairing first, while the VM may still be unprotected and all zeros
 *    (baseline 'zero': no initial copy), then protection; the sender starts the initial copy
 *    itself when one is needed (sender.ts), unless the pairing is paused.
 *  - unpair (primary): pause (the sender stops), unprotect (the journal goes), forget the copy
 *    and resync state, drop the pairing. A crash part-way leaves it paired, so the command
 *    resent does the rest.
 *  - unpair (replica): retire the store (closed, kept from reopening), then either delete the
 *    VM with its disks, or drop the pairing and the recovery store and keep the VM stopped.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { fsyncDirSync } from '../../../common/fs/atomic-file.ts';
import type { Logger } from '../../../common/log/log.ts';
import { systemClock, type Clock } from '../../../common/time/clock.ts';
import type { RecoveryPointRecord } from '../journal/types.ts';
import { openReplicaStore } from '../recovery/replica-store.ts';
import {
  EXPORT_STATE,
  exportVmOffline,
  readExportRecord,
  type ExportResult,
} from '../sync/offline-export.ts';
import { IMPORT_STATE, importVmOffline, type ImportResult } from '../sync/offline-import.ts';
import { layout } from '../vm/layout.ts';
import { RawDisk } from '../vm/raw-disk.ts';
import { diskPath } from '../vm/vm-config.ts';
import type { VmManager, VmView } from '../vm/vm-manager.ts';
import type { PairInput } from '../vm/vm-pairing.ts';
import type { FailoverOps } from '../failover/failover-ops.ts';
import { readFailoverState } from '../failover/failover-state.ts';
import type { Pairing } from './pairing.ts';
import { replicaDir } from './receiver.ts';
import type { ReplicationStatus } from './sender.ts';
import type { HostBandwidth } from './bandwidth-limiter.ts';
import type { ChurnKeeper } from '../vm/churn-file.ts';
import type { RevocationList } from '../../common/revocation.ts';

/** What the operations need of replication (replication-host.ts); absent: pairings only. */
export interface OpsReplication {
  status(view: VmView): Promise<ReplicationStatus | undefined>;
  refresh(): Promise<void>;
  points(vm: string): Promise<RecoveryPointRecord[]>;
  retire(vm: string): Promise<void>;
  release(vm: string): void;
}

export interface PairRequest extends PairInput {
  /** Primary: protect with the policy's cycle settings (R16) once paired. */
  readonly protection?: { copyFrequencySeconds: number; appConsistentHours: number };
}

export interface ReplicationOps {
  pair(req: PairRequest): Promise<VmView>;
  /** Ends replication; resolves with the VM as it remains (undefined once deleted). */
  unpair(name: string, deleteReplica: boolean): Promise<VmView | undefined>;
  /** Primary: stops (true) or resumes (false) shipping; the journal records either way. */
  setPaused(name: string, paused: boolean): Promise<VmView>;
  /** Primary: compares with the replica and sends only the differences (sender.ts). */
  resync(name: string): Promise<VmView>;
  /** A replica's retained points, or a primary's own, oldest first. */
  points(name: string): Promise<RecoveryPointRecord[]>;
  status(view: VmView): Promise<ReplicationStatus | undefined>;
  /** The VM now, or undefined when there is none. */
  find(name: string): VmView | undefined;
  /** Failover on this host (agent/host/failover), when the host agent wires it in. */
  readonly failover?: FailoverOps;
  /** The host's replication bandwidth cap (set_bandwidth; the inventory reports it). */
  readonly bandwidth?: HostBandwidth;
  /** The vault's revoked host credentials (set_revoked; the inventory reports the version). */
  readonly revoked?: RevocationList;
  /** Measured guest write churn per VM and disk (the inventory reports it). */
  readonly churn?: Pick<ChurnKeeper, 'snapshot'>;
  /**
   * Primary, offline initial replication (R15): exports the disks with a manifest into
   * `<path>/<name>/` (sync/offline-export.ts); the same id again does nothing.
   */
  exportOffline(name: string, path: string, exportId: string): Promise<ExportResult>;
  /** Replica: verifies the export in `<path>/<name>/` and writes it into the replica. */
  importOffline(name: string, path: string, exportId: string): Promise<ImportResult>;
  /**
   * Primary: the replica holds export `exportId`: segments up to its base are done, the
   * baseline becomes 'copied' (shipping continues from the base once resumed).
   */
  seedOffline(name: string, exportId: string): Promise<VmView>;
}

/** Files of a primary's copy and resync, which no longer apply once it is unpaired. */
const PRIMARY_STATE_FILES = ['initial-copy.json', 'resync-source.json', EXPORT_STATE];

export function createReplicationOps(o: {
  dataDir: string;
  vms: VmManager;
  replication?: OpsReplication;
  log: Logger;
  /** @default systemClock */
  clock?: Clock;
}): ReplicationOps {
  const { vms, replication: repl } = o;
  const log = o.log.child({ component: 'replication-ops' });
  const clock = o.clock ?? systemClock;
  const find = (name: string): VmView | undefined => vms.list().find((v) => v.config.name === name);
  const refresh = async (): Promise<void> => repl?.refresh();

  function pairedPrimary(name: string): Pairing {
    const pairing = vms.pairingOf(name);
    if (find(name) === undefined) {
      throw new SecondsiteError('SS_NOT_FOUND', `no VM named ${name} on this host`, { vm: name });
    }
    if (!pairing) {
      throw new SecondsiteError('SS_NOT_PAIRED', `VM ${name} is not paired`, { vm: name });
    }
    if (pairing.role !== 'primary') {
      throw new SecondsiteError(
        'SS_CONFLICT',
        `VM ${name} is a replica on this host; pause, resume and resync act on its primary`,
        { vm: name },
      );
    }
    const fence = readFailoverState(layout.vmDir(o.dataDir, name)).fence;
    if (fence) {
      // A fenced former primary never ships again (agent/host/failover): reverse it instead.
      throw new SecondsiteError(
        'SS_CONFLICT',
        `VM ${name} is fenced (epoch ${fence.epoch} runs elsewhere): its replication cannot resume`,
        { vm: name, epoch: fence.epoch },
      );
    }
    return pairing;
  }

  async function unpairPrimary(view: VmView): Promise<VmView | undefined> {
    const name = view.config.name;
    await vms.updatePairing(name, { paused: true });
    await refresh(); // the sender has stopped
    if (view.config.protection) await vms.unprotectVm(name);
    const vmDir = layout.vmDir(o.dataDir, name);
    for (const f of PRIMARY_STATE_FILES) rmSync(join(vmDir, f), { force: true });
    const after = await vms.unpair(name);
    await refresh();
    return after;
  }

  async function unpairReplica(view: VmView, deleteReplica: boolean): Promise<VmView | undefined> {
    const name = view.config.name;
    await repl?.retire(name);
    try {
      if (deleteReplica) {
        await vms.deleteVm(name);
        return undefined;
      }
      const after = await vms.unpair(name);
      dropReplicaStore(name);
      return after;
    } finally {
      repl?.release(name);
    }
  }

  /** The recovery store of a VM that is no replica any more (also what a crash left). */
  function dropReplicaStore(name: string): void {
    const vmDir = layout.vmDir(o.dataDir, name);
    rmSync(join(vmDir, IMPORT_STATE), { force: true });
    if (!existsSync(replicaDir(vmDir))) return;
    rmSync(replicaDir(vmDir), { recursive: true, force: true });
    fsyncDirSync(vmDir);
  }

  return {
    find,
    status: async (view) => repl?.status(view),

    async pair(req) {
      const before = vms.pairingOf(req.name);
      let view = await vms.pair(req);
      const name = view.config.name;
      const retention = req.retentionHours;
      if (retention !== undefined && before && before.retentionHours !== retention) {
        // The store reads its retention when it opens: reopen it with the new one.
        await repl?.retire(name);
        repl?.release(name);
      }
      const want = req.protection;
      const have = view.config.protection;
      if (req.role === 'primary' && want) {
        const same =
          have?.copyFrequencySeconds === want.copyFrequencySeconds &&
          have.appConsistentHours === want.appConsistentHours;
        if (!same) view = await vms.protectVm(name, want);
      }
      await refresh();
      return find(name) ?? view;
    },

    async unpair(name, deleteReplica) {
      const view = find(name);
      if (!view) {
        if (deleteReplica) return undefined; // deleted already (an answer lost in a crash)
        throw new SecondsiteError('SS_NOT_FOUND', `no VM named ${name} on this host`, { vm: name });
      }
      const role = view.pairing?.role;
      log.info({ vm: name, role, deleteReplica }, 'unpairing');
      if (role === 'primary') return unpairPrimary(view);
      if (role === 'replica') return unpairReplica(view, deleteReplica);
      dropReplicaStore(name);
      return view;
    },

    async setPaused(name, paused) {
      const pairing = pairedPrimary(name);
      if (Boolean(pairing.paused) !== paused) {
        await vms.updatePairing(name, { paused });
        log.info({ vm: name }, paused ? 'replication paused' : 'replication resumed');
      }
      await refresh();
      return find(name)!;
    },

    async resync(name) {
      const pairing = pairedPrimary(name);
      if (pairing.baseline === 'initial-copy-required') {
        // The initial copy that is due (or running) makes the replica exact by itself.
        log.info({ vm: name }, 'resync asked while an initial copy is due: the copy covers it');
      } else if (pairing.baseline !== 'resync-required') {
        await vms.updatePairing(name, { baseline: 'resync-required' });
        log.info({ vm: name }, 'resync requested');
      }
      await refresh();
      return find(name)!;
    },

    async exportOffline(name, path, exportId) {
      const pairing = pairedPrimary(name);
      const journal = vms.journalOf(name);
      if (!journal || journal.state !== 'journaling') {
        throw new SecondsiteError(
          'SS_CONFLICT',
          `VM ${name} must be running and protected (journaling) to be exported`,
          { vm: name },
        );
      }
      const view = find(name)!;
      return exportVmOffline({
        vm: name,
        exportId,
        epoch: pairing.epoch,
        path,
        vmDir: layout.vmDir(o.dataDir, name),
        journal,
        diskSizes: view.config.disks.map((d) => d.sizeBytes),
        now: () => clock.now(),
        log,
      });
    },

    async importOffline(name, path, exportId) {
      const view = find(name);
      const pairing = vms.pairingOf(name);
      if (!view || pairing?.role !== 'replica') {
        throw new SecondsiteError('SS_NOT_PAIRED', `VM ${name} is not paired as a replica here`, {
          vm: name,
        });
      }
      const vmDir = layout.vmDir(o.dataDir, name);
      // The receiver's store closes and stays closed while the import writes the replica.
      await repl?.retire(name);
      try {
        const paths = view.config.disks.map((d) => diskPath(vmDir, d));
        const disks = paths.map((p) => RawDisk.open(p));
        try {
          const store = await openReplicaStore({
            dir: replicaDir(vmDir),
            vmId: name,
            disks,
            diskPaths: paths,
            clock,
            log,
            retentionHours: pairing.retentionHours ?? 24,
          });
          try {
            return await importVmOffline({
              vm: name,
              path,
              exportId,
              vmDir,
              disks,
              diskPaths: paths,
              store,
              log,
            });
          } finally {
            await store.close();
          }
        } finally {
          await Promise.all(disks.map((d) => d.close()));
        }
      } finally {
        repl?.release(name);
      }
    },

    async seedOffline(name, exportId) {
      const pairing = pairedPrimary(name);
      const record = readExportRecord(layout.vmDir(o.dataDir, name));
      if (record?.exportId !== exportId) {
        throw new SecondsiteError(
          'SS_CONFLICT',
          `VM ${name} has no export ${exportId} here (its last export: ${record?.exportId ?? 'none'})`,
          { vm: name, exportId },
        );
      }
      if (pairing.baseline !== 'copied') {
        const journal = vms.journalOf(name);
        if (journal?.state === 'journaling') {
          await journal.markShipped(record.baseSeq);
          await vms.setBaseline(name, 'copied');
        } else {
          // Writes since the export may be lost from the journal (stopped, or overflowed):
          // the imported replica is compared and only what differs is sent.
          await vms.updatePairing(name, { baseline: 'resync-required' });
        }
        log.info({ vm: name, exportId, baseSeq: record.baseSeq }, 'seeded from offline export');
      }
      await refresh();
      return find(name)!;
    },

    async points(name) {
      const view = find(name);
      if (view?.pairing?.role === 'replica' && repl) return repl.points(name);
      return [...vms.points(name)];
    },
  };
}
