/**
 * What a provider reports about its site (R7): clouds with their host groups and networks, and
 * the fabric details policies and placement need (R8, R9, R12): every host with its OS version
 * and default storage, every VM network with its subnets, every storage classification with
 * its locations. Free space is measured when the report is made (each hello and inventory
 * report), so it is as fresh as the last report, not live.
 */
import { statfsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type {
  CloudInfo,
  HostInfoMsg,
  SiteInventoryMsg,
  StorageClassificationInfoMsg,
  VmNetworkInfoMsg,
} from '../../../common/wire/agent-channel-messages.ts';
import type { SiteFile } from './site-schema.ts';

/** Free bytes available to an unprivileged writer under `path`, as a decimal string. */
export type FreeBytesOf = (path: string) => string;

export function cloudInfo(site: SiteFile, cloud: string): CloudInfo | undefined {
  const c = site.clouds.find((x) => x.name === cloud);
  if (c === undefined) return undefined;
  const logical = site.logicalNetworks.filter((n) => n.clouds.includes(cloud)).map((n) => n.name);
  const vmNetworks = site.vmNetworks
    .filter((n) => logical.includes(n.logicalNetwork))
    .map((n) => n.name);
  return { name: c.name, hostGroups: [...c.hostGroups], logicalNetworks: logical, vmNetworks };
}

/**
 * Free space of the file system holding `path`, or of its nearest existing parent (a storage
 * folder the host agent has not created yet lives on its parent's file system). "0" when
 * nothing can be measured: placement then treats the location as full and falls back to the
 * host's default location, which is the safe side.
 */
export function measuredFreeBytes(path: string): string {
  let p = resolve(path);
  for (;;) {
    try {
      const s = statfsSync(p, { bigint: true });
      return (s.bavail * s.bsize).toString();
    } catch (e) {
      const parent = dirname(p);
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || parent === p) return '0';
      p = parent;
    }
  }
}

function hostDetails(site: SiteFile, freeBytesOf: FreeBytesOf): HostInfoMsg[] {
  return site.hosts.map((h) => ({
    name: h.name,
    hostGroup: h.hostGroup,
    osVersion: h.osVersion ?? '',
    defaultStorage: h.defaultStorage ?? '',
    defaultFreeBytes: h.defaultStorage === undefined ? '0' : freeBytesOf(h.defaultStorage),
  }));
}

function vmNetworks(site: SiteFile): VmNetworkInfoMsg[] {
  return site.vmNetworks.map((n) => ({
    name: n.name,
    logicalNetwork: n.logicalNetwork,
    subnets: n.subnets.map((s) => ({ name: s.name, prefix: s.prefix })),
  }));
}

function classifications(site: SiteFile, freeBytesOf: FreeBytesOf): StorageClassificationInfoMsg[] {
  return site.storageClassifications.map((c) => ({
    name: c.name,
    locations: c.locations.map((l) => ({
      host: l.host,
      path: l.path,
      freeBytes: freeBytesOf(l.path),
    })),
  }));
}

export function siteInventory(
  site: SiteFile,
  freeBytesOf: FreeBytesOf = measuredFreeBytes,
): SiteInventoryMsg {
  return {
    clouds: site.clouds.flatMap((c) => {
      const info = cloudInfo(site, c.name);
      return info === undefined ? [] : [info];
    }),
    hosts: site.hosts.map((h) => h.name),
    hostDetails: hostDetails(site, freeBytesOf),
    vmNetworks: vmNetworks(site),
    classifications: classifications(site, freeBytesOf),
  };
}
