/**
 * What the site file says about one host: where it sits (host group, cloud) and the VMs it
 * should have. Pure.
 */
import { parseSize } from '../../../common/config/units.ts';
import type {
  CreateHostVmCommand,
  HostInventoryMsg,
} from '../../../common/wire/host-control-messages.ts';
import type { SiteFile } from '../site/site-schema.ts';

export interface HostPlacement {
  readonly hostGroup: string;
  /** The first cloud containing the host group; '' when none does. */
  readonly cloud: string;
}

export function hostPlacement(site: SiteFile, host: string): HostPlacement | undefined {
  const h = site.hosts.find((x) => x.name === host);
  if (h === undefined) return undefined;
  const cloud = site.clouds.find((c) => c.hostGroups.includes(h.hostGroup));
  return { hostGroup: h.hostGroup, cloud: cloud?.name ?? '' };
}

export interface DeclaredVm {
  /** Stable per host and VM: the host applies it once, also across reconnects and restarts. */
  readonly commandId: string;
  readonly create: CreateHostVmCommand;
}

/** The VMs the site file declares on `host`, as create commands. */
export function declaredVms(site: SiteFile, host: string): DeclaredVm[] {
  return site.vms
    .filter((vm) => vm.host === host)
    .map((vm, i) => ({
      commandId: `site/${host}/${vm.name}/create`,
      create: {
        name: vm.name,
        disks: vm.disks.map((d, j) => ({
          sizeBytes: String(parseSize(`vms[${i}].disks[${j}].size`, d.size)),
          classification: d.classification ?? '',
        })),
        nics: vm.nics.map((n) => ({ network: n.network, subnet: n.subnet ?? '' })),
        start: vm.state === 'running',
      },
    }));
}

/**
 * `inventory` with each disk's storage classification as the site file declares it (same
 * host, same VM name, same disk index); '' for VMs and disks it does not declare (a replica
 * VM placed here by replication, a VM made with `host vm create`).
 */
export function classified(
  site: SiteFile,
  host: string,
  inventory: HostInventoryMsg,
): HostInventoryMsg {
  const declared = new Map(site.vms.filter((v) => v.host === host).map((v) => [v.name, v]));
  return {
    ...inventory,
    vms: inventory.vms.map((vm) => {
      const d = declared.get(vm.name);
      return {
        ...vm,
        disks: vm.disks.map((disk) => ({
          ...disk,
          classification: d?.disks[disk.index]?.classification ?? '',
        })),
      };
    }),
  };
}
