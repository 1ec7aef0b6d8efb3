/** What a provider reports about its site: clouds with their host groups and networks (R7). */
import type { CloudInfo, SiteInventoryMsg } from '../../../common/wire/agent-channel-messages.ts';
import type { SiteFile } from './site-schema.ts';

export function cloudInfo(site: SiteFile, cloud: string): CloudInfo | undefined {
  const c = site.clouds.find((x) => x.name === cloud);
  if (c === undefined) return undefined;
  const logical = site.logicalNetworks.filter((n) => n.clouds.includes(cloud)).map((n) => n.name);
  const vmNetworks = site.vmNetworks
    .filter((n) => logical.includes(n.logicalNetwork))
    .map((n) => n.name);
  return { name: c.name, hostGroups: [...c.hostGroups], logicalNetworks: logical, vmNetworks };
}

export function siteInventory(site: SiteFile): SiteInventoryMsg {
  return {
    clouds: site.clouds.flatMap((c) => {
      const info = cloudInfo(site, c.name);
      return info === undefined ? [] : [info];
    }),
    hosts: site.hosts.map((h) => h.name),
  };
}
