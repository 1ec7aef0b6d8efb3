/**
 * Server records as the coordinator stores them for a site file, for the fabric, policy and
 * map tests. Built the way the provider reports a site (agent/provider/site/site-inventory.ts;
 * coordinator code may not import agent code), with free space given per path.
 */
import { readFileSync } from 'node:fs';
import type { ServerRecord, SiteInventory } from '../domain/server.ts';

export interface SiteJson {
  server: string;
  clouds: { name: string; hostGroups: string[] }[];
  hosts: { name: string; hostGroup: string; osVersion?: string; defaultStorage?: string }[];
  logicalNetworks: { name: string; clouds: string[] }[];
  vmNetworks: {
    name: string;
    logicalNetwork: string;
    subnets: { name: string; prefix: string }[];
  }[];
  storageClassifications: { name: string; locations: { host: string; path: string }[] }[];
}

export function recordOf(
  site: SiteJson,
  free: (path: string) => number = () => 0,
  vaultId = 'v-1',
): ServerRecord {
  const logicalOf = (cloud: string) =>
    site.logicalNetworks.filter((n) => n.clouds.includes(cloud)).map((n) => n.name);
  const inventory: SiteInventory = {
    clouds: site.clouds.map((c) => ({
      name: c.name,
      hostGroups: c.hostGroups,
      logicalNetworks: logicalOf(c.name),
      vmNetworks: site.vmNetworks
        .filter((n) => logicalOf(c.name).includes(n.logicalNetwork))
        .map((n) => n.name),
    })),
    hosts: site.hosts.map((h) => h.name),
    hostDetails: site.hosts.map((h) => ({
      name: h.name,
      hostGroup: h.hostGroup,
      osVersion: h.osVersion ?? null,
      defaultStorage: h.defaultStorage ?? null,
      defaultFreeBytes: h.defaultStorage === undefined ? 0 : free(h.defaultStorage),
    })),
    vmNetworks: site.vmNetworks,
    classifications: site.storageClassifications.map((c) => ({
      name: c.name,
      locations: c.locations.map((l) => ({ ...l, freeBytes: free(l.path) })),
    })),
  };
  return {
    vaultId,
    name: site.server,
    identityName: site.server.toLowerCase(),
    registrationId: 'r-1',
    registeredAt: '2026-01-01T00:00:00.000Z',
    version: '0.1.0',
    clientCertFingerprint: 'f',
    inventory,
  };
}

export const deploy = (name: string): SiteJson =>
  JSON.parse(
    readFileSync(new URL(`../../deploy/sites/${name}`, import.meta.url), 'utf8'),
  ) as SiteJson;
