/**
 * The host's VMs as the control stream reports them (host_control.proto HostInventory), with
 * each VM's replication status: role, sender state, last ack, errors, whether it is protected
 * or paused, its journal bytes not yet acknowledged (primary) and its retained recovery points
 * (replica). The provider link compares it with the last one sent and pushes it when it
 * changed (provider-link.ts). With failover (agent/host/failover): each VM's role and failover
 * state, and the running test copies ("<VM>-test", role "test") as VMs of their own.
 */
import type {
  HostInventoryMsg,
  HostVmChurnMsg,
  HostVmMsg,
  ReplicationStatusMsg,
} from '../../../common/wire/host-control-messages.ts';
import { settingToMsg } from '../../../common/wire/bandwidth-setting.ts';
import { priorityOf } from '../replication/bandwidth.ts';
import type { VmChurn } from '../vm/churn-stats.ts';
import { pointToMsg } from '../control/host-local-mapping.ts';
import type { TestVmInfo } from '../failover/failover-ops.ts';
import type { RecoveryPointRecord } from '../journal/types.ts';
import type { ReplicationOps } from '../replication/replication-ops.ts';
import type { ReplicationStatus } from '../replication/sender.ts';
import type { VmManager, VmView } from '../vm/vm-manager.ts';

export async function hostInventory(
  vms: VmManager,
  ops: ReplicationOps | undefined,
): Promise<HostInventoryMsg> {
  const own = await Promise.all(vms.list().map((v) => hostVmMsg(v, ops)));
  const tests = (ops?.failover?.testVms() ?? []).map(testVmMsg);
  return {
    vms: [...own, ...tests].sort((a, b) => a.name.localeCompare(b.name)),
    ...bandwidthReport(ops),
    revokedVersion: String(ops?.revoked?.current().version ?? 0),
  };
}

/** A test copy: served from its point (plus its overlay), not paired, role "test". */
export function testVmMsg(t: TestVmInfo): HostVmMsg {
  return {
    name: t.name,
    state: 'HOST_VM_STATE_RUNNING',
    disks: t.disks.map((d, index) => ({ index, sizeBytes: String(d.sizeBytes), nbd: d.nbd })),
    nics: t.nics.map((n) => ({ network: n.network, subnet: n.subnet })),
    replication: null,
    protected: false,
    latestPoint: pointToMsg(t.point),
    pointCount: 0,
    oldestPointMs: '0',
    unshippedBytes: '0',
    paused: false,
    role: 'test',
    failover: { state: 'test', pointId: t.point.id, epoch: '0', testVm: t.of },
  };
}

function replicationMsg(v: VmView, r: ReplicationStatus | undefined): ReplicationStatusMsg | null {
  const p = v.pairing;
  if (!p) return null;
  return {
    role: p.role,
    peer: r?.peer ?? '',
    state: r?.state ?? '',
    lastAckedSeq: String(r?.lastAckedSeq ?? 0),
    lastError: r?.lastError ?? '',
    lastShippedAtMs: String(r?.lastShippedAt ?? 0),
    peerAddress: p.peerAddress,
    epoch: String(p.epoch),
    baseline: p.baseline,
    copyBytesDone: String(r?.copy?.bytesDone ?? 0),
    copyBytesTotal: String(r?.copy?.bytesTotal ?? 0),
    resyncBytesCompared: String(r?.resync?.bytesCompared ?? 0),
    resyncBytesSent: String(r?.resync?.bytesSent ?? 0),
    segmentsViaCertificate: String(r?.segmentsVia?.certificate ?? 0),
    segmentsViaTicket: String(r?.segmentsVia?.ticket ?? 0),
    receivedRawBytes: String(r?.received?.rawBytes ?? 0),
    receivedWireBytes: String(r?.received?.wireBytes ?? 0),
  };
}

/** One VM as the inventory and the answers of relayed commands show it. */
export async function hostVmMsg(view: VmView, ops: ReplicationOps | undefined): Promise<HostVmMsg> {
  const { config, runtime, pairing } = view;
  const status = await ops?.status(view).catch(() => undefined);
  // A replica's points are the recovery store's (retained, oldest first); a store being
  // unpaired reads as none.
  const points: RecoveryPointRecord[] =
    pairing?.role === 'replica' ? ((await ops?.points(config.name).catch(() => [])) ?? []) : [];
  const latest = pairing?.role === 'replica' ? points.at(-1) : view.latestPoint;
  const f = ops?.failover?.status(view);
  return {
    name: config.name,
    // What is true now; the config's state is what the agent restores after a restart. A
    // VM whose guest was detached (planned failover draining its journal) serves nothing.
    state: runtime && runtime.nbd.length > 0 ? 'HOST_VM_STATE_RUNNING' : 'HOST_VM_STATE_STOPPED',
    disks: config.disks.map((d) => ({
      index: d.index,
      sizeBytes: String(d.sizeBytes),
      nbd: runtime?.nbd[d.index] ?? '',
    })),
    nics: config.nics.map((n) => ({ network: n.network, subnet: n.subnet })),
    replication: replicationMsg(view, status),
    protected: Boolean(config.protection),
    latestPoint: latest ? pointToMsg(latest) : null,
    pointCount: points.length,
    oldestPointMs: String(points[0]?.time ?? 0),
    unshippedBytes: String(runtime?.unshippedBytes ?? 0),
    paused: Boolean(pairing?.paused),
    role: f?.role ?? pairing?.role ?? 'none',
    failover: f?.state
      ? { state: f.state, pointId: f.pointId, epoch: String(f.epoch), testVm: f.testVm }
      : null,
    ...capacityFields(config.name, ops),
  };
}

/** R22: the bandwidth cap in force (HostInventory 10-11). */
function bandwidthReport(ops: ReplicationOps | undefined): Partial<HostInventoryMsg> {
  const b = ops?.bandwidth;
  if (!b) return {};
  return {
    bandwidth: settingToMsg(b.setting),
    bandwidthNowBytesPerSecond: String(b.rateNow() ?? 0),
  };
}

/** R22: a VM's churn, priority and waits for the cap (HostVm 30-32); small: 5 regions. */
function capacityFields(vm: string, ops: ReplicationOps | undefined): Partial<HostVmMsg> {
  const churn = ops?.churn?.snapshot(vm);
  const b = ops?.bandwidth;
  return {
    ...(churn ? { churn: churnMsg(churn) } : {}),
    ...(b
      ? {
          priority: priorityOf(b.setting, vm),
          // Whole seconds: the inventory is compared as text and pushed when it changes.
          bandwidthWaitMs: String(Math.round(b.waitedMs(vm) / 1000) * 1000),
        }
      : {}),
  };
}

/** The churn report (HostVm.churn): the bucket length travels with the figures it counts. */
export function churnMsg(c: VmChurn): HostVmChurnMsg {
  return {
    windowMinutes: c.windowMinutes,
    bucketMs: c.bucketMs,
    disks: c.disks.map((d) => ({
      index: d.index,
      bytes: String(d.bytes),
      avgBytesPerHour: String(d.avgBytesPerHour),
      peakMinuteBytes: String(d.peakBytes1m),
      peakFiveMinutesBytes: String(d.peakBytes5m),
      peakQuarterHourBytes: String(d.peakBytes15m),
      peakHourBytes: String(d.peakBytes1h),
    })),
    hotRegions: c.hotRegions.map((r) => ({
      disk: r.disk,
      offset: String(r.offset),
      length: String(r.length),
      bytes: String(r.bytes),
    })),
  };
}
