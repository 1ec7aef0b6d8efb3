/**
 * Steps the two-site e2e scenarios share (protection, failover): New York and Chicago with one
 * host each on 127.0.1.1 / 127.0.2.1, a policy with maps, and reads that compare a replica
 * point or a VM's export with another image, all through `secondsite … --json` and qemu-img.
 */
import { spawnSync } from 'node:child_process';
import { expect } from 'vitest';
import type { ItemView, VmView } from '../../common/api-client/index.ts';
import { CHICAGO_SITE, NEW_YORK_SITE } from './provider-lab.ts';
import { cliJson } from './secondsite-cli.ts';
import type { SiteLab } from './site-lab.ts';
import { waitFor } from './wait-for.ts';

export const NY_IP = '127.0.1.1';
export const CHI_IP = '127.0.2.1';

export interface SiteVm {
  readonly name: string;
  readonly host: string;
  readonly size: string;
  readonly classification: string;
  readonly nics: readonly { network: string; subnet: string }[];
}

/** Coordinator, both providers with `vms` declared in New York, and one host per site. */
export async function startTwoSites(
  lab: SiteLab,
  a: {
    vms: readonly SiteVm[];
    port: number;
    coordinatorEnv?: NodeJS.ProcessEnv;
    /** Addresses of New York's and Chicago's provider and host. @default NY_IP, CHI_IP */
    ips?: { ny: string; chi: string };
    /** More `host start` flags for both hosts (e.g. `--dev-churn-bucket 2s`). */
    hostArgs?: readonly string[];
  },
): Promise<void> {
  const ny = a.ips?.ny ?? NY_IP;
  const chi = a.ips?.chi ?? CHI_IP;
  await lab.startCoordinator('prod', a.coordinatorEnv ?? {});
  const nySite = lab.siteCopy(NEW_YORK_SITE, 'ny.json', (s) => {
    s['vms'] = a.vms.map((v) => ({
      name: v.name,
      host: v.host,
      state: 'running',
      disks: [{ size: v.size, classification: v.classification }],
      nics: v.nics,
    }));
  });
  const chiSite = lab.siteCopy(CHICAGO_SITE, 'chi.json', (s) => {
    s['vms'] = [];
  });
  await Promise.all([lab.startProvider('ny', nySite, ny), lab.startProvider('chi', chiSite, chi)]);
  lab.startHost('ny-hv1', 'ny', ny, a.port, 0, a.hostArgs);
  lab.startHost('chi-hv1', 'chi', chi, a.port, 0, a.hostArgs);
  const onHv1 = a.vms.filter((v) => v.host === 'ny-hv1').length;
  await waitFor(async () => {
    const vms = await lab.cli<VmView[]>(['vm', 'list', '--vault', 'prod']);
    return vms.filter((v) => v.host === 'ny-hv1' && v.state === 'running').length === onHv1;
  });
}

/** Policy "gold" (30 s), NY GoldCloud1 → Chicago GoldCloud2, network and storage maps. */
export async function goldPolicy(lab: SiteLab): Promise<void> {
  const v = ['--vault', 'prod'];
  await lab.cli(['policy', 'create', ...v, '--name', 'gold', '--copy-frequency', '30s']);
  await lab.cli([
    'policy',
    'associate',
    ...v,
    '--policy',
    'gold',
    '--source-cloud',
    'VMM-NewYork/GoldCloud1',
    '--target-cloud',
    'VMM-Chicago/GoldCloud2',
  ]);
  await lab.cli([
    'network-map',
    'create',
    ...v,
    '--source',
    'VMM-NewYork/VMNetwork1 NewYork',
    '--target',
    'VMM-Chicago/VMNetwork1 Chicago',
  ]);
  await lab.cli([
    'storage-map',
    'create',
    ...v,
    '--source',
    'VMM-NewYork/GOLD',
    '--target',
    'VMM-Chicago/GOLD',
  ]);
}

export const itemOf = (lab: SiteLab, vm: string): Promise<ItemView> =>
  lab.cli(['item', 'show', '--vault', 'prod', vm]);

export const vmOf = (lab: SiteLab, name: string): Promise<VmView> =>
  lab.cli(['vm', 'show', '--vault', 'prod', name]);

/** The NBD URI of a VM's first disk (it must be running). */
export async function nbdOf(lab: SiteLab, name: string): Promise<string> {
  const uri = (await vmOf(lab, name)).disks[0]?.nbd ?? null;
  if (uri === null) throw new Error(`${name} has no NBD export (stopped?)`);
  return uri;
}

/** Waits until the item's newest point is newer than `after` (ms), then returns its id. */
export async function nextPoint(lab: SiteLab, vm: string, after: number): Promise<string> {
  const i = await waitFor(
    async () => {
      const v = await itemOf(lab, vm);
      const t = v.latestRecoveryPoint === null ? 0 : Date.parse(v.latestRecoveryPoint.time);
      return t > after ? v : undefined;
    },
    { what: `a new recovery point of ${vm}` },
  );
  return i.latestRecoveryPoint?.id ?? '';
}

/** Disk 0 of `vm` at `point`, as the replica host `host` reads it, written to a file. */
export async function replicaAt(
  lab: SiteLab,
  host: string,
  vm: string,
  point: string,
): Promise<string> {
  const out = lab.path(`${host}-${vm}-${point}.img`);
  const read = await cliJson<{ bytes: number }>(
    [
      'host',
      'vm',
      'read',
      vm,
      '--data',
      lab.path(host),
      '--disk',
      '0',
      '--point',
      point,
      '--out',
      out,
    ],
    {},
  );
  expect(read.bytes).toBeGreaterThan(0);
  return out;
}

/** qemu-img compare of two raw images (files or NBD URIs): they must be identical. */
export function expectIdentical(a: string, b: string): void {
  const cmp = spawnSync('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', a, b], {
    encoding: 'utf8',
  });
  expect(cmp.stdout + cmp.stderr).toContain('Images are identical');
  expect(cmp.status).toBe(0);
}

/** qemu-img convert of a VM's export to a file: the bytes as they are now. */
export function snapshotOf(lab: SiteLab, uri: string, name: string): string {
  const out = lab.path(`${name}.img`);
  const r = spawnSync('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', uri, out], {
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  return out;
}
