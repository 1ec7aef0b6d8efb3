/**
 * The two-site demo's folder and fabric:
 *
 *   <folder>/coordinator/          coordinator data (admin.json for the admin commands)
 *   <folder>/new-york/ chicago/    provider data (identity, host-join-token)
 *   <folder>/ny-hv1/ chi-hv1/      host agent data (VM configs, journals, control socket)
 *   <folder>/srv/                  the hosts' storage locations (the site files' /srv/ moved here)
 *   <folder>/sites/                the site files the providers read
 *   <folder>/keys/                 registration keys downloaded from the coordinator
 *   <folder>/logs/                 one log per process (pino JSON lines)
 *
 * The site files are copies of deploy/sites/new-york.json and chicago.json with two small VMs
 * (VM1 and VM2 on ny-hv1 in GoldCloud1) and none in Chicago.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SITES = fileURLToPath(new URL('../../deploy/sites/', import.meta.url));

export const VAULT = 'demo';
export const POLICY = 'gold';
export const VMS = ['VM1', 'VM2'] as const;
/** Sparse, so 256 MiB costs only what the workload writes. */
export const VM_DISK = '256MiB';

/** A VM declared in New York's site file: its name and its one disk's size ("256MiB"). */
export interface DemoVm {
  readonly name: string;
  readonly disk: string;
}

/** The demo's own VMs (VMS, VM_DISK each). */
export const DEMO_VMS: readonly DemoVm[] = VMS.map((name) => ({ name, disk: VM_DISK }));

export interface SiteSpec {
  /** Folder and log names. */
  readonly key: 'new-york' | 'chicago';
  readonly server: string;
  readonly ip: string;
  readonly host: string;
  readonly cloud: string;
  readonly vmNetwork: string;
  readonly siteFile: string;
}

export const NEW_YORK: SiteSpec = {
  key: 'new-york',
  server: 'VMM-NewYork',
  ip: '127.0.1.1',
  host: 'ny-hv1',
  cloud: 'GoldCloud1',
  vmNetwork: 'VMNetwork1 NewYork',
  siteFile: 'new-york.json',
};

export const CHICAGO: SiteSpec = {
  key: 'chicago',
  server: 'VMM-Chicago',
  ip: '127.0.2.1',
  host: 'chi-hv1',
  cloud: 'GoldCloud2',
  vmNetwork: 'VMNetwork1 Chicago',
  siteFile: 'chicago.json',
};

export class DemoFolder {
  constructor(readonly root: string) {
    for (const d of ['sites', 'keys', 'logs', 'srv']) mkdirSync(join(root, d), { recursive: true });
  }

  path(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  log(name: string): string {
    return this.path('logs', `${name}.log`);
  }

  get adminFile(): string {
    return this.path('coordinator', 'admin.json');
  }

  /**
   * Writes the site file of `site` into the folder and returns its path; New York declares
   * `vms` on its host (the demo's VM1 and VM2 unless given, e.g. by the benchmarks).
   */
  writeSite(site: SiteSpec, vms: readonly DemoVm[] = DEMO_VMS): string {
    const text = readFileSync(join(SITES, site.siteFile), 'utf8').replaceAll(
      '/srv/',
      `${this.path('srv')}/`,
    );
    const json = JSON.parse(text) as Record<string, unknown>;
    json['vms'] =
      site === NEW_YORK
        ? vms.map((vm) => ({
            name: vm.name,
            host: NEW_YORK.host,
            state: 'running',
            disks: [{ size: vm.disk, classification: 'GOLD' }],
            nics: [{ network: NEW_YORK.vmNetwork, subnet: 'web' }],
          }))
        : [];
    const out = this.path('sites', site.siteFile);
    writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);
    return out;
  }
}

/** True when `port` can be bound on every address given (0 asks for any port). */
function bindable(port: number, address: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, address, () => {
      const bound = (s.address() as { port: number }).port;
      s.close(() => resolve(bound));
    });
  });
}

/** The site addresses that cannot be bound here (Linux routes all of 127/8 to loopback). */
export async function unusableAddresses(addresses: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const a of addresses) if ((await bindable(0, a)) === undefined) out.push(a);
  return out;
}

/**
 * `preferred` when it is free on every address, else a port the OS picks that is free on all
 * of them; `fallback` says which.
 */
export async function choosePort(
  preferred: number,
  addresses: readonly string[],
): Promise<{ port: number; fallback: boolean }> {
  const freeEverywhere = async (p: number): Promise<boolean> => {
    for (const a of addresses) if ((await bindable(p, a)) === undefined) return false;
    return true;
  };
  if (await freeEverywhere(preferred)) return { port: preferred, fallback: false };
  for (;;) {
    const p = await bindable(0, addresses[0] ?? '127.0.0.1');
    if (p !== undefined && (await freeEverywhere(p))) return { port: p, fallback: true };
  }
}
