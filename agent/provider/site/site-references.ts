/**
 * Reference rules of the site file, as a table: each rule walks one kind of reference and
 * names the first that points at nothing. Pure. Duplicated names are refused too, since every
 * reference is by name.
 */
import type { SiteFile } from './site-schema.ts';

export interface BadReference {
  readonly at: (string | number)[];
  readonly message: string;
}

type Rule = (s: SiteFile) => BadReference | undefined;

const names = (xs: readonly { name: string }[]): Set<string> => new Set(xs.map((x) => x.name));

function duplicates(s: SiteFile): BadReference | undefined {
  const lists = [
    ['clouds', s.clouds],
    ['hostGroups', s.hostGroups],
    ['hosts', s.hosts],
    ['logicalNetworks', s.logicalNetworks],
    ['vmNetworks', s.vmNetworks],
    ['storageClassifications', s.storageClassifications],
    ['vms', s.vms],
  ] as const;
  for (const [list, items] of lists) {
    const seen = new Set<string>();
    for (const [i, item] of items.entries()) {
      if (seen.has(item.name)) {
        return { at: [list, i, 'name'], message: `${list}[${i}] repeats the name "${item.name}"` };
      }
      seen.add(item.name);
    }
  }
  return undefined;
}

const rules: readonly Rule[] = [
  duplicates,
  (s) => {
    const groups = names(s.hostGroups);
    for (const [i, c] of s.clouds.entries()) {
      for (const [j, g] of c.hostGroups.entries()) {
        if (!groups.has(g)) {
          return {
            at: ['clouds', i, 'hostGroups', j],
            message: `cloud "${c.name}" names unknown host group "${g}"`,
          };
        }
      }
    }
    for (const [i, h] of s.hosts.entries()) {
      if (!groups.has(h.hostGroup)) {
        return {
          at: ['hosts', i, 'hostGroup'],
          message: `host "${h.name}" names unknown host group "${h.hostGroup}"`,
        };
      }
    }
    return undefined;
  },
  (s) => {
    const clouds = names(s.clouds);
    for (const [i, n] of s.logicalNetworks.entries()) {
      for (const [j, c] of n.clouds.entries()) {
        if (!clouds.has(c)) {
          return {
            at: ['logicalNetworks', i, 'clouds', j],
            message: `logical network "${n.name}" names unknown cloud "${c}"`,
          };
        }
      }
    }
    const logical = names(s.logicalNetworks);
    for (const [i, n] of s.vmNetworks.entries()) {
      if (!logical.has(n.logicalNetwork)) {
        return {
          at: ['vmNetworks', i, 'logicalNetwork'],
          message: `VM network "${n.name}" names unknown logical network "${n.logicalNetwork}"`,
        };
      }
    }
    return undefined;
  },
  (s) => {
    const hosts = names(s.hosts);
    for (const [i, c] of s.storageClassifications.entries()) {
      for (const [j, l] of c.locations.entries()) {
        if (!hosts.has(l.host)) {
          return {
            at: ['storageClassifications', i, 'locations', j, 'host'],
            message: `classification "${c.name}" names unknown host "${l.host}"`,
          };
        }
      }
    }
    return undefined;
  },
  (s) => {
    const hosts = names(s.hosts);
    const classes = names(s.storageClassifications);
    const networks = new Map(s.vmNetworks.map((n) => [n.name, n]));
    for (const [i, vm] of s.vms.entries()) {
      if (!hosts.has(vm.host)) {
        return {
          at: ['vms', i, 'host'],
          message: `VM "${vm.name}" names unknown host "${vm.host}"`,
        };
      }
      for (const [j, d] of vm.disks.entries()) {
        if (d.classification !== undefined && !classes.has(d.classification)) {
          return {
            at: ['vms', i, 'disks', j, 'classification'],
            message: `VM "${vm.name}" names unknown storage classification "${d.classification}"`,
          };
        }
      }
      for (const [j, nic] of vm.nics.entries()) {
        const net = networks.get(nic.network);
        if (net === undefined) {
          return {
            at: ['vms', i, 'nics', j, 'network'],
            message: `VM "${vm.name}" names unknown VM network "${nic.network}"`,
          };
        }
        if (nic.subnet !== undefined && !net.subnets.some((sn) => sn.name === nic.subnet)) {
          return {
            at: ['vms', i, 'nics', j, 'subnet'],
            message: `VM "${vm.name}" names unknown subnet "${nic.subnet}" of "${net.name}"`,
          };
        }
      }
    }
    return undefined;
  },
];

export function checkReferences(site: SiteFile): BadReference | undefined {
  for (const rule of rules) {
    const bad = rule(site);
    if (bad !== undefined) return bad;
  }
  return undefined;
}
