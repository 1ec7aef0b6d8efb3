/**
 * A registered server's fabric in the shapes the pure domain takes: mapping validation
 * (ServerFabric), the one-OS-version rule of policies (HostOsView) and replica placement
 * (TargetSite). Pure: everything comes from the server record the provider last reported.
 *
 * A cloud's hosts are the hosts whose host group the cloud contains (R7). A record stored
 * before providers reported fabric details has no hosts, networks or classifications here
 * until the provider's next hello refreshes it.
 */
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { ServerFabric } from '../domain/mapping.ts';
import type { TargetHost, TargetSite } from '../domain/placement.ts';
import type { HostOsView } from '../domain/policy.ts';
import type { CloudInventory, HostInventory, ServerRecord } from '../domain/server.ts';

/** A target host as placement sees it, plus the free space of its default location. */
export interface FabricTargetHost extends TargetHost {
  readonly defaultFreeBytes: number;
}

/** TargetSite with the hosts' default free space (placement reads what it needs of it). */
export interface FabricTargetSite extends TargetSite {
  readonly cloud: string;
  readonly hosts: readonly FabricTargetHost[];
}

export function serverFabricOf(server: ServerRecord): ServerFabric {
  const inv = server.inventory;
  return Object.freeze({
    server: server.name,
    clouds: inv.clouds.map((c) => ({ name: c.name, logicalNetworks: [...c.logicalNetworks] })),
    vmNetworks: (inv.vmNetworks ?? []).map((n) => ({
      name: n.name,
      logicalNetwork: n.logicalNetwork,
    })),
    classifications: (inv.classifications ?? []).map((c) => c.name),
  });
}

function cloudOf(server: ServerRecord, cloud: string): CloudInventory {
  const c = server.inventory.clouds.find((x) => x.name === cloud);
  if (c === undefined) {
    throw new SecondsiteError('SS_NOT_FOUND', `server ${server.name} has no cloud named ${cloud}`, {
      server: server.name,
      cloud,
    });
  }
  return c;
}

/** The hosts of a cloud: those in one of its host groups, in the site file's order. */
export function cloudHosts(server: ServerRecord, cloud: string): readonly HostInventory[] {
  const groups = new Set(cloudOf(server, cloud).hostGroups);
  return (server.inventory.hostDetails ?? []).filter((h) => groups.has(h.hostGroup));
}

export function hostOsViews(server: ServerRecord, cloud: string): HostOsView[] {
  return cloudHosts(server, cloud).map((h) => ({ name: h.name, osVersion: h.osVersion }));
}

/**
 * What placement needs of a target cloud: its hosts (available when `connected` says so), the
 * classification locations on those hosts, and the VM networks the cloud can connect replicas
 * to (those of its logical networks, R7; a map to any other network leaves the NIC
 * unconnected, as placement's `target-network-missing`).
 */
export function targetSiteOf(
  server: ServerRecord,
  cloud: string,
  connected: (host: string) => boolean,
): FabricTargetSite {
  const c = cloudOf(server, cloud);
  const hosts = cloudHosts(server, cloud);
  const names = new Set(hosts.map((h) => h.name));
  const usable = new Set(c.vmNetworks);
  return Object.freeze({
    server: server.name,
    cloud: c.name,
    hosts: hosts.map((h) => ({
      name: h.name,
      defaultStorage: h.defaultStorage,
      defaultFreeBytes: h.defaultFreeBytes,
      available: connected(h.name),
    })),
    classifications: (server.inventory.classifications ?? []).map((k) => ({
      name: k.name,
      locations: k.locations
        .filter((l) => names.has(l.host))
        .map((l) => ({ host: l.host, path: l.path, freeBytes: l.freeBytes })),
    })),
    vmNetworks: (server.inventory.vmNetworks ?? [])
      .filter((n) => usable.has(n.name))
      .map((n) => ({ name: n.name, subnets: n.subnets.map((s) => ({ name: s.name })) })),
  });
}
