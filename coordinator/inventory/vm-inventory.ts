/**
 * The vault's VMs (R7): each host's VMs as its provider last relayed them
 * (agent_channel.proto HostInventoryReport), one record per host, replaced by every report.
 * `vm list` and `vm show` read them; a VM's role is its replication pairing on its host.
 * Listeners (the protection service) hear every stored report.
 */
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { VmView } from '../../common/api-client/types.ts';
import type { Clock } from '../../common/time/clock.ts';
import type {
  BandwidthSettingMsg,
  HostVmChurnMsg,
  HostInventoryReport,
  HostVmMsg,
  RecoveryPointMsg,
} from '../../common/wire/host-control-messages.ts';
import type { PointSummary, ReplicationFacts, VmStatus } from '../domain/protection.ts';
import { collect, keys, type Store } from '../store/store.ts';
import { parseQualified } from '../domain/mapping.ts';
import { DEFAULT_CHURN_BUCKET_MS } from '../domain/capacity.ts';

export interface VmRecord {
  readonly name: string;
  readonly state: 'running' | 'stopped';
  readonly disks: readonly {
    index: number;
    sizeBytes: number;
    nbd: string | null;
    classification?: string | null;
  }[];
  readonly nics: readonly { network: string; subnet: string }[];
  /** Replication as the host reports it; absent for hosts that report none. */
  readonly replication?: VmReplicationRecord;
  /** The host's own word on the VM's role (a test copy is `test`); absent from older hosts. */
  readonly role?: 'primary' | 'replica' | 'test' | 'none';
  /** R22: measured write churn (absent while none was measured or from older hosts). */
  readonly churn?: VmChurnRecord;
}

/** A VM's write churn as its host measured it (host_control.proto HostVmChurn), numbers. */
export interface VmChurnRecord {
  /** Completed buckets the figures cover (minutes from a production host). */
  readonly windowMinutes: number;
  /**
   * The host's bucket length (ms): 60000 from production hosts and from hosts that report none
   * (0); a development host's shorter buckets (`--dev-churn-bucket`) otherwise. The peaks are
   * of 1, 5, 15 and 60 buckets. Absent from records stored before it: a minute.
   */
  readonly bucketMs?: number;
  readonly disks: readonly {
    index: number;
    bytes: number;
    avgBytesPerHour: number;
    peakMinuteBytes: number;
    peakFiveMinutesBytes: number;
    peakQuarterHourBytes: number;
    peakHourBytes: number;
  }[];
  readonly hotRegions: readonly { disk: number; offset: number; length: number; bytes: number }[];
}

function churnOf(c: HostVmChurnMsg | null | undefined): VmChurnRecord | undefined {
  if (c === null || c === undefined) return undefined;
  return {
    windowMinutes: c.windowMinutes ?? 0,
    bucketMs: c.bucketMs ? c.bucketMs : DEFAULT_CHURN_BUCKET_MS,
    disks: (c.disks ?? []).map((d) => ({
      index: d.index,
      bytes: num(d.bytes),
      avgBytesPerHour: num(d.avgBytesPerHour),
      peakMinuteBytes: num(d.peakMinuteBytes),
      peakFiveMinutesBytes: num(d.peakFiveMinutesBytes),
      peakQuarterHourBytes: num(d.peakQuarterHourBytes),
      peakHourBytes: num(d.peakHourBytes),
    })),
    hotRegions: (c.hotRegions ?? []).map((r) => ({
      disk: r.disk,
      offset: num(r.offset),
      length: num(r.length),
      bytes: num(r.bytes),
    })),
  };
}

export interface VmReplicationRecord extends ReplicationFacts {
  readonly protected: boolean;
}

export interface HostRecord {
  readonly vaultId: string;
  readonly server: string;
  readonly host: string;
  readonly hostGroup: string;
  /** The cloud containing the host's host group; null when none does. */
  readonly cloud: string | null;
  readonly connected: boolean;
  readonly reportedAt: string;
  readonly vms: readonly VmRecord[];
  /** Where peers reach its replication ports; '' / 0 when the host did not say. */
  readonly address?: string;
  readonly certPort?: number;
  readonly ticketPort?: number;
  /** R22: the replication bandwidth cap the host reports (absent from older hosts). */
  readonly bandwidth?: { setting: BandwidthSettingMsg; nowBytesPerSecond: number };
  /** Issue #7: the revoked-host list version the host holds (0 or absent: none). */
  readonly revokedVersion?: number;
}

const num = (v: string | number | undefined | null): number => Number(v ?? 0) || 0;

function pointOf(p: RecoveryPointMsg | null | undefined): PointSummary | null {
  if (p === null || p === undefined || p.id === '') return null;
  return {
    id: p.id,
    time: num(p.timeMs),
    type: p.type === 'RECOVERY_POINT_TYPE_APP_CONSISTENT' ? 'app-consistent' : 'crash-consistent',
  };
}

function replicationOf(vm: HostVmMsg): VmReplicationRecord {
  const r = vm.replication ?? null;
  const role = r?.role === 'primary' || r?.role === 'replica' ? r.role : null;
  return {
    role,
    senderState: r?.state ?? '',
    lastError: r?.lastError ?? '',
    baseline: r?.baseline ?? '',
    epoch: r === null ? null : num(r.epoch),
    copyDone: num(r?.copyBytesDone),
    copyTotal: num(r?.copyBytesTotal),
    latestPoint: pointOf(vm.latestPoint),
    pointCount: vm.pointCount ?? 0,
    unshippedBytes: num(vm.unshippedBytes),
    paused: vm.paused ?? false,
    protected: vm.protected ?? false,
    bandwidthWaitMs: num(vm.bandwidthWaitMs),
    ...(role === 'replica'
      ? {
          received: {
            rawBytes: num(r?.receivedRawBytes),
            wireBytes: num(r?.receivedWireBytes),
          },
        }
      : {}),
  };
}

/** A VM's replication facts as the domain reads them, with the host's reachability. */
/** Facts of a VM the host reports nothing about (not paired, or an older host). */
const NO_REPLICATION: ReplicationFacts = Object.freeze({
  role: null,
  senderState: '',
  lastError: '',
  baseline: '',
  epoch: null,
  copyDone: 0,
  copyTotal: 0,
  latestPoint: null,
  pointCount: 0,
  unshippedBytes: 0,
  paused: false,
  bandwidthWaitMs: 0,
});

export function vmStatusOf(h: HostRecord, vm: VmRecord | undefined, serverUp: boolean): VmStatus {
  const { protected: _protected, ...facts } = vm?.replication ?? {
    ...NO_REPLICATION,
    protected: false,
  };
  return {
    ...NO_REPLICATION,
    ...facts,
    reachable: h.connected && serverUp,
    reportedAt: Date.parse(h.reportedAt) || 0,
  };
}

function recordOf(vaultId: string, server: string, r: HostInventoryReport, at: string): HostRecord {
  return {
    vaultId,
    server,
    host: r.host,
    hostGroup: r.hostGroup,
    cloud: r.cloud === '' ? null : r.cloud,
    connected: r.connected,
    reportedAt: at,
    address: r.address ?? '',
    certPort: r.certPort ?? 0,
    ticketPort: r.ticketPort ?? 0,
    revokedVersion: num(r.inventory?.revokedVersion),
    ...(r.inventory?.bandwidth
      ? {
          bandwidth: {
            setting: r.inventory.bandwidth,
            nowBytesPerSecond: num(r.inventory.bandwidthNowBytesPerSecond),
          },
        }
      : {}),
    vms: (r.inventory?.vms ?? []).map((vm) => ({
      name: vm.name,
      state: vm.state === 'HOST_VM_STATE_RUNNING' ? 'running' : 'stopped',
      disks: (vm.disks ?? []).map((d) => ({
        index: d.index,
        sizeBytes: Number(d.sizeBytes),
        nbd: d.nbd === '' ? null : d.nbd,
        classification: d.classification ? d.classification : null,
      })),
      nics: (vm.nics ?? []).map((n) => ({ network: n.network, subnet: n.subnet })),
      replication: replicationOf(vm),
      ...(vm.role === 'primary' || vm.role === 'replica' || vm.role === 'test' || vm.role === 'none'
        ? { role: vm.role }
        : {}),
      ...(vm.churn ? { churn: churnOf(vm.churn) } : {}),
    })),
  };
}

function viewOf(h: HostRecord, vm: VmRecord): VmView {
  return {
    name: vm.name,
    server: h.server,
    cloud: h.cloud,
    host: h.host,
    state: vm.state,
    role: vm.role ?? vm.replication?.role ?? 'none',
    disks: vm.disks.map((d) => ({ index: d.index, sizeBytes: d.sizeBytes, nbd: d.nbd })),
    nics: vm.nics.map((n) => ({ network: n.network, subnet: n.subnet })),
  };
}

export type HostReportListener = (record: HostRecord) => Promise<void>;

export class VmInventory {
  private readonly listeners: HostReportListener[] = [];

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** Called after every stored report (errors are the listener's to log). */
  onReport(listener: HostReportListener): void {
    this.listeners.push(listener);
  }

  /** Stores one host's report; it replaces what the host reported before. */
  async report(vaultId: string, server: string, r: HostInventoryReport): Promise<void> {
    const at = new Date(this.clock.now()).toISOString();
    const record = recordOf(vaultId, server, r, at);
    await this.store.put(keys.host(vaultId, server, r.host), record);
    for (const l of this.listeners) await l(record);
  }

  /** One host's last report. */
  host(vaultId: string, server: string, host: string): Promise<HostRecord | undefined> {
    return this.store.get<HostRecord>(keys.host(vaultId, server, host));
  }

  /** Every host record of the vault. */
  hosts(vaultId: string): Promise<HostRecord[]> {
    return collect<HostRecord>(this.store, keys.hostPrefix(vaultId));
  }

  /** Every VM of the vault, or of one SERVER/CLOUD, sorted by server then name. */
  async list(vaultId: string, cloud?: string): Promise<VmView[]> {
    const filter = cloud === undefined ? undefined : parseQualified('cloud', cloud);
    const hosts = await collect<HostRecord>(this.store, keys.hostPrefix(vaultId));
    return hosts
      .filter(
        (h) =>
          filter === undefined ||
          (h.server.toLowerCase() === filter.server.toLowerCase() && h.cloud === filter.name),
      )
      .flatMap((h) => h.vms.map((vm) => viewOf(h, vm)))
      .sort((a, b) => a.server.localeCompare(b.server) || a.name.localeCompare(b.name));
  }

  /** One VM by SERVER/VM, or by a bare name that only one server has. */
  async show(vaultId: string, name: string): Promise<VmView> {
    const all = await this.list(vaultId);
    const found = name.includes('/')
      ? (() => {
          const q = parseQualified('name', name);
          return all.filter(
            (v) => v.server.toLowerCase() === q.server.toLowerCase() && v.name === q.name,
          );
        })()
      : all.filter((v) => v.name === name);
    if (found.length === 0) {
      throw new SecondsiteError('SS_NOT_FOUND', `no VM named ${name} in this vault`, { vm: name });
    }
    if (found.length > 1) {
      throw new SecondsiteError(
        'SS_CONFLICT',
        `${name} names VMs on ${found.map((v) => v.server).join(' and ')}; name it as SERVER/VM`,
        { vm: name },
      );
    }
    return found[0] as VmView;
  }
}
