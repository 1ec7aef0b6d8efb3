/**
 * Where a replica goes (R8, R9): target host, a storage location per disk, and the replica's
 * NICs. Pure: the caller gathers the source VM, the target cloud's inventory and the maps.
 *
 * Disks (R9): a disk whose source classification is mapped goes to a location of the mapped
 * target classification on the target host, the one with the most free space that still fits
 * the disk (disks placed earlier in the same VM use up space first). No mapping, or no location
 * that fits, → the target host's default location.
 *
 * Host choice, deterministic: among available hosts that have a default location for every disk
 * that needs one, prefer
 *   1. the most disks placed on their mapped classification ("hosts that can reach it"),
 *   2. then the most free space left in those mapped locations after placing (spreads load),
 *   3. then the host name in code-unit order (stable across locales).
 * The number of replicas already on a host is not considered: the inventory does not carry it.
 *
 * NICs (R8): a mapped source network → the mapped target network, on the subnet of the same name
 * as the source VM's subnet, else the first subnet; an unmapped network (or a map whose target
 * network is gone or on another server) → not connected.
 */
import { SecondsiteError } from '../../common/errors/errors.ts';
import {
  formatQualified,
  mappedTarget,
  pickSubnet,
  sameServer,
  type NetworkMap,
  type StorageMap,
} from './mapping.ts';

export interface SourceVm {
  readonly name: string;
  readonly server: string;
  readonly disks: readonly {
    readonly index: number;
    readonly sizeBytes: number;
    readonly classification: string | null;
  }[];
  readonly nics: readonly { readonly network: string | null; readonly subnet: string | null }[];
}

export interface TargetHost {
  readonly name: string;
  readonly defaultStorage: string | null;
  /** false for a disconnected host; such hosts get no new replicas. @default true */
  readonly available?: boolean;
}

export interface TargetSite {
  readonly server: string;
  /** Hosts of the target cloud. */
  readonly hosts: readonly TargetHost[];
  readonly classifications: readonly {
    readonly name: string;
    readonly locations: readonly {
      readonly host: string;
      readonly path: string;
      readonly freeBytes: number;
    }[];
  }[];
  readonly vmNetworks: readonly {
    readonly name: string;
    readonly subnets: readonly { readonly name: string }[];
  }[];
}

export type DiskReason = 'mapped' | 'no-mapping' | 'no-fitting-location';
export type NicReason = 'mapped' | 'unmapped' | 'target-network-missing' | 'source-disconnected';

export interface DiskPlacement {
  readonly index: number;
  /** The storage location (folder) the host agent puts the replica disk in. */
  readonly path: string;
  /** The target classification the location belongs to; null for the default location. */
  readonly classification: string | null;
  readonly reason: DiskReason;
}

export interface NicPlacement {
  readonly network: string | null;
  readonly subnet: string | null;
  readonly reason: NicReason;
}

export interface Placement {
  readonly targetHost: string;
  readonly disks: readonly DiskPlacement[];
  readonly nics: readonly NicPlacement[];
}

interface HostPlan {
  readonly host: TargetHost;
  readonly disks: DiskPlacement[];
  readonly onMapped: number;
  readonly freeLeft: number;
}

/** Places every disk on one host; null when a disk needs the default and the host has none. */
function planHost(
  vm: SourceVm,
  host: TargetHost,
  site: TargetSite,
  storageMaps: readonly StorageMap[],
): HostPlan | null {
  const used = new Map<string, number>();
  const disks: DiskPlacement[] = [];
  let onMapped = 0;
  let freeLeft = 0;
  for (const disk of vm.disks) {
    const target =
      disk.classification === null
        ? null
        : mappedTarget(storageMaps, { server: vm.server, name: disk.classification });
    const usable = target !== null && sameServer(target.server, site.server) ? target : null;
    const locations = (site.classifications.find((c) => c.name === usable?.name)?.locations ?? [])
      .filter((l) => l.host === host.name)
      .map((l) => ({ ...l, left: l.freeBytes - (used.get(l.path) ?? 0) }))
      .filter((l) => l.left >= disk.sizeBytes)
      // Most free space first; equal space → path order, so the choice is repeatable.
      .sort((a, b) => b.left - a.left || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const best = locations[0];
    if (usable !== null && best !== undefined) {
      used.set(best.path, (used.get(best.path) ?? 0) + disk.sizeBytes);
      disks.push({
        index: disk.index,
        path: best.path,
        classification: usable.name,
        reason: 'mapped',
      });
      onMapped += 1;
      freeLeft += best.left - disk.sizeBytes;
      continue;
    }
    if (host.defaultStorage === null) return null;
    const reason: DiskReason = usable === null ? 'no-mapping' : 'no-fitting-location';
    disks.push({ index: disk.index, path: host.defaultStorage, classification: null, reason });
  }
  return { host, disks, onMapped, freeLeft };
}

function betterPlan(a: HostPlan, b: HostPlan): number {
  if (a.onMapped !== b.onMapped) return b.onMapped - a.onMapped;
  if (a.freeLeft !== b.freeLeft) return b.freeLeft - a.freeLeft;
  return a.host.name < b.host.name ? -1 : a.host.name > b.host.name ? 1 : 0;
}

/** One replica NIC per source NIC, by R8 (see the file comment). */
export function planNics(
  vm: SourceVm,
  site: TargetSite,
  networkMaps: readonly NetworkMap[],
): readonly NicPlacement[] {
  return vm.nics.map((nic): NicPlacement => {
    if (nic.network === null) return { network: null, subnet: null, reason: 'source-disconnected' };
    const target = mappedTarget(networkMaps, { server: vm.server, name: nic.network });
    if (target === null) return { network: null, subnet: null, reason: 'unmapped' };
    const net = sameServer(target.server, site.server)
      ? site.vmNetworks.find((n) => n.name === target.name)
      : undefined;
    if (net === undefined) return { network: null, subnet: null, reason: 'target-network-missing' };
    return { network: net.name, subnet: pickSubnet(nic.subnet, net.subnets), reason: 'mapped' };
  });
}

/** The replica's placement; refuses (SS_CONFLICT) when no available host can hold it. */
export function placeReplica(
  vm: SourceVm,
  site: TargetSite,
  maps: { readonly network: readonly NetworkMap[]; readonly storage: readonly StorageMap[] },
): Placement {
  const plans = site.hosts
    .filter((h) => h.available !== false)
    .map((h) => planHost(vm, h, site, maps.storage))
    .filter((p): p is HostPlan => p !== null)
    .sort(betterPlan);
  const chosen = plans[0];
  if (chosen === undefined) {
    const why =
      site.hosts.length === 0
        ? 'the target cloud has no hosts'
        : 'no available host of the target cloud has a default storage location for the ' +
          'disks that no mapped classification can take';
    throw new SecondsiteError(
      'SS_CONFLICT',
      `cannot place a replica of ${vm.server}/${vm.name} on ${site.server}: ${why}`,
      { vm: `${vm.server}/${vm.name}`, targetServer: site.server },
    );
  }
  return Object.freeze({
    targetHost: chosen.host.name,
    disks: Object.freeze(chosen.disks.map((d) => Object.freeze(d))),
    nics: Object.freeze(planNics(vm, site, maps.network).map((n) => Object.freeze(n))),
  });
}

export interface NicReplan {
  readonly nics: readonly NicPlacement[];
  /** Indexes of the NICs whose network or subnet changes: the ones to reconnect. */
  readonly changed: readonly number[];
}

/**
 * R8 "changing a mapping reconnects replicas": the replica NICs an existing replica should have
 * under the current maps, and which of its current NICs differ.
 */
export function replanNics(
  vm: SourceVm,
  site: TargetSite,
  networkMaps: readonly NetworkMap[],
  current: readonly { readonly network: string | null; readonly subnet: string | null }[],
): NicReplan {
  const nics = planNics(vm, site, networkMaps);
  const changed = nics.flatMap((n, i) =>
    current[i]?.network === n.network && current[i]?.subnet === n.subnet ? [] : [i],
  );
  return Object.freeze({ nics, changed: Object.freeze(changed) });
}

/** For messages: "VMM-Chicago/VMNetwork1 Chicago" or "not connected". */
export function describeNic(server: string, nic: NicPlacement): string {
  if (nic.network === null) return 'not connected';
  const where = formatQualified({ server, name: nic.network });
  return nic.subnet === null ? where : `${where} (subnet ${nic.subnet})`;
}
