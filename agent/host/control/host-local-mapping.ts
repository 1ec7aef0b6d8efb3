/** Converts the VM manager's views to HostLocal messages (host_local.proto). */
import type { RecoveryPointRecord } from '../journal/types.ts';
import type { VmView } from '../vm/vm-manager.ts';
import { layout } from '../vm/layout.ts';
import { diskPath } from '../vm/vm-config.ts';
import type { ReplicationStatus } from '../replication/sender.ts';
import type { LocalVmMsg, RecoveryPointMsg, ReplicationStatusMsg } from './host-local-types.ts';

export function pointToMsg(p: RecoveryPointRecord): RecoveryPointMsg {
  return {
    id: p.id,
    timeMs: String(p.time),
    type:
      p.type === 'app-consistent'
        ? 'RECOVERY_POINT_TYPE_APP_CONSISTENT'
        : 'RECOVERY_POINT_TYPE_CRASH_CONSISTENT',
    segment: String(p.segment),
    freezeFailed: p.freezeFailed ?? '',
  };
}

function replicationToMsg(
  v: VmView,
  r: ReplicationStatus | undefined,
): ReplicationStatusMsg | null {
  const p = v.pairing;
  if (!p || !r) return null;
  return {
    role: r.role,
    peer: r.peer,
    state: r.state,
    lastAckedSeq: String(r.lastAckedSeq),
    lastError: r.lastError,
    lastShippedAtMs: String(r.lastShippedAt),
    peerAddress: p.peerAddress,
    epoch: String(p.epoch),
    baseline: p.baseline,
    copyBytesDone: String(r.copy?.bytesDone ?? 0),
    copyBytesTotal: String(r.copy?.bytesTotal ?? 0),
    resyncBytesCompared: String(r.resync?.bytesCompared ?? 0),
    resyncBytesSent: String(r.resync?.bytesSent ?? 0),
    segmentsViaCertificate: String(r.segmentsVia?.certificate ?? 0),
    segmentsViaTicket: String(r.segmentsVia?.ticket ?? 0),
    receivedRawBytes: String(r.received?.rawBytes ?? 0),
    receivedWireBytes: String(r.received?.wireBytes ?? 0),
  };
}

export function vmToMsg(
  dataDir: string,
): (v: VmView, replication?: ReplicationStatus) => LocalVmMsg {
  return (view, replication) => vmMsg(dataDir, view, replicationToMsg(view, replication));
}

function vmMsg(
  dataDir: string,
  { config, runtime, latestPoint }: VmView,
  replication: ReplicationStatusMsg | null,
): LocalVmMsg {
  return {
    name: config.name,
    id: config.id,
    // What is true now; the config's state is what the agent restores after a restart.
    state: runtime ? 'running' : 'stopped',
    protected: Boolean(config.protection),
    copyFrequencySeconds: config.protection?.copyFrequencySeconds ?? 0,
    appConsistentHours: config.protection?.appConsistentHours ?? 0,
    disks: config.disks.map((d) => ({
      index: d.index,
      sizeBytes: String(d.sizeBytes),
      nbd: runtime?.nbd[d.index] ?? '',
      file: diskPath(layout.vmDir(dataDir, config.name), d),
    })),
    nics: config.nics,
    journalState: runtime?.journalState ?? '',
    unshippedBytes: String(runtime?.unshippedBytes ?? 0),
    guestAgentSocket: layout.guestSocket(dataDir, config.name),
    guestConnected: runtime?.guestConnected ?? false,
    latestRecoveryPoint: latestPoint ? pointToMsg(latestPoint) : null,
    replication,
  };
}
