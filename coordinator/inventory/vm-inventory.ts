/**
 * The vault's VMs (R7): each host's VMs as its provider last relayed them
 * (agent_channel.proto HostInventoryReport), one record per host, replaced by every report.
 * `vm list` and `vm show` read them. Roles stay `none` until replication pairs VMs.
 */
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { VmView } from '../../common/api-client/types.ts';
import type { Clock } from '../../common/time/clock.ts';
import type { HostInventoryReport } from '../../common/wire/host-control-messages.ts';
import { collect, keys, type Store } from '../store/store.ts';
import { parseQualified } from '../domain/mapping.ts';

export interface VmRecord {
  readonly name: string;
  readonly state: 'running' | 'stopped';
  readonly disks: readonly { index: number; sizeBytes: number; nbd: string | null }[];
  readonly nics: readonly { network: string; subnet: string }[];
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
    vms: (r.inventory?.vms ?? []).map((vm) => ({
      name: vm.name,
      state: vm.state === 'HOST_VM_STATE_RUNNING' ? 'running' : 'stopped',
      disks: (vm.disks ?? []).map((d) => ({
        index: d.index,
        sizeBytes: Number(d.sizeBytes),
        nbd: d.nbd === '' ? null : d.nbd,
      })),
      nics: (vm.nics ?? []).map((n) => ({ network: n.network, subnet: n.subnet })),
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
    role: 'none',
    disks: vm.disks.map((d) => ({ index: d.index, sizeBytes: d.sizeBytes, nbd: d.nbd })),
    nics: vm.nics.map((n) => ({ network: n.network, subnet: n.subnet })),
  };
}

export class VmInventory {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** Stores one host's report; it replaces what the host reported before. */
  async report(vaultId: string, server: string, r: HostInventoryReport): Promise<void> {
    const at = new Date(this.clock.now()).toISOString();
    await this.store.put(keys.host(vaultId, server, r.host), recordOf(vaultId, server, r, at));
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
