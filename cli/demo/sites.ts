/**
 * Starting the two-site demo's processes, in the order an administrator would:
 *
 *   1. the coordinator (`coordinator start --listen 127.0.0.1:0 --json`), which writes
 *      <folder>/coordinator/admin.json;
 *   2. per site: a registration key downloaded from the coordinator, then the provider
 *      (`provider start --key … --listen IP:0 --json`), which registers and writes the host
 *      join token;
 *   3. per site: one host agent enrolled with its provider's join token, on the site's loopback
 *      address and the replication port chosen by the caller.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { ApiClient } from '../../common/api-client/index.ts';
import { SecondsiteError } from '../../common/errors/errors.ts';
import {
  CHICAGO,
  NEW_YORK,
  VAULT,
  VMS,
  choosePort,
  unusableAddresses,
  type DemoFolder,
  type DemoVm,
  type SiteSpec,
} from './layout.ts';
import {
  exitedError,
  isRunning,
  poll,
  printedJson,
  startProcess,
  type DemoProcess,
} from './processes.ts';

export interface Ports {
  /** Replication port, certificate authentication (8084 when free). */
  readonly cert: number;
  /** Replication port, ticket authentication (8083 when free). */
  readonly ticket: number;
}

export interface BringUp {
  readonly folder: DemoFolder;
  /** Every process started is added here, in start order, for the demo to stop. */
  readonly processes: DemoProcess[];
  readonly timeScale: number;
  readonly signal: AbortSignal;
  /** New York's VMs (the demo's VM1 and VM2 unless given; the benchmarks declare their own). */
  readonly vms?: readonly DemoVm[];
  /** Where the progress lines go (the demo prints them on stdout). */
  readonly say?: (text: string) => void;
  /** Extra environment of the coordinator and of the host agents (e.g. SECONDSITE_LOG_LEVEL). */
  readonly coordinatorEnv?: NodeJS.ProcessEnv;
  readonly hostEnv?: NodeJS.ProcessEnv;
}

const stdout = (text: string): boolean => process.stdout.write(text);

function startCoordinator(b: BringUp): DemoProcess {
  const p = startProcess(
    'coordinator',
    [
      'coordinator',
      'start',
      '--data',
      b.folder.path('coordinator'),
      '--listen',
      '127.0.0.1:0',
      '--json',
    ],
    {
      log: b.folder.log('coordinator'),
      env: { ...b.coordinatorEnv, SECONDSITE_TIME_SCALE: String(b.timeScale) },
    },
  );
  b.processes.push(p);
  return p;
}

/** Downloads a key bound to the site's server and starts its provider; returns where hosts enrol. */
async function startProvider(b: BringUp, api: ApiClient, site: SiteSpec): Promise<string> {
  const key = await api.downloadKey(VAULT, {
    validFor: '1h',
    singleUse: true,
    server: site.server,
  });
  const keyFile = b.folder.path('keys', `${site.key}.json`);
  writeFileSync(keyFile, `${JSON.stringify(key, null, 2)}\n`, { mode: 0o600 });
  const p = startProcess(
    `provider ${site.server}`,
    [
      'provider',
      'start',
      '--data',
      b.folder.path(site.key),
      '--site',
      b.folder.writeSite(site, b.vms),
      '--key',
      keyFile,
      '--listen',
      `${site.ip}:0`,
      '--json',
    ],
    { log: b.folder.log(`provider-${site.key}`) },
  );
  b.processes.push(p);
  return (await printedJson<{ hosts: string }>(p, b.signal)).hosts;
}

function startHost(b: BringUp, site: SiteSpec, providerAt: string, ports: Ports): DemoProcess {
  const p = startProcess(
    `host ${site.host}`,
    [
      'host',
      'start',
      '--data',
      b.folder.path(site.host),
      '--name',
      site.host,
      '--provider',
      providerAt,
      '--token-file',
      b.folder.path(site.key, 'host-join-token'),
      '--address',
      site.ip,
      '--cert-port',
      String(ports.cert),
      '--ticket-port',
      String(ports.ticket),
    ],
    { log: b.folder.log(`host-${site.host}`), ...(b.hostEnv ? { env: b.hostEnv } : {}) },
  );
  b.processes.push(p);
  return p;
}

/** The replication ports: 8084 and 8083 when free on both sites' addresses, else free ones. */
async function choosePorts(say: (text: string) => void): Promise<Ports> {
  const ips = [NEW_YORK.ip, CHICAGO.ip];
  const cert = await choosePort(8084, ips);
  const ticket = await choosePort(8083, ips);
  say(
    cert.fallback
      ? `- replication port: 8084 is taken on ${ips.join(' or ')}, so the hosts use ${cert.port}\n`
      : `- replication port: 8084 (the real one) on ${ips.join(' and ')}\n`,
  );
  if (ticket.fallback)
    say(`  (8083, the ticket port, is taken too: the hosts use ${ticket.port})\n`);
  return { cert: cert.port, ticket: ticket.port };
}

/**
 * Starts the coordinator, creates the vault, registers both providers and enrols one host per
 * site; `connect` makes the API client from the coordinator's admin.json.
 */
export async function bringUpSites(
  b: BringUp,
  connect: (adminFile: string) => ApiClient,
): Promise<void> {
  const say = b.say ?? stdout;
  const unusable = await unusableAddresses([NEW_YORK.ip, CHICAGO.ip]);
  if (unusable.length > 0) {
    throw new SecondsiteError(
      'SS_UNAVAILABLE',
      `the demo's site addresses ${unusable.join(' and ')} are not usable on this machine; ` +
        'add them to the loopback interface (macOS: sudo ifconfig lo0 alias 127.0.1.1 up, and the same for 127.0.2.1)',
      { addresses: unusable },
    );
  }
  say('\nSites: starting the processes\n');
  const coordinator = startCoordinator(b);
  const { url, adminFile } = await printedJson<{ url: string; adminFile: string }>(
    coordinator,
    b.signal,
  );
  say(`- coordinator listening on ${url} (log: ${coordinator.log})\n`);
  const api = connect(adminFile);
  await api.createVault(VAULT);
  say(`- vault "${VAULT}" created\n`);
  const providerAt: Record<string, string> = {};
  for (const site of [NEW_YORK, CHICAGO]) {
    providerAt[site.key] = await startProvider(b, api, site);
    say(
      `- provider ${site.server} registered with a downloaded key; its hosts enrol at ` +
        `${providerAt[site.key]} (log: ${b.folder.log(`provider-${site.key}`)})\n`,
    );
  }
  const ports = await choosePorts(say);
  const hosts = [NEW_YORK, CHICAGO].map((site) => ({
    site,
    p: startHost(b, site, providerAt[site.key] ?? '', ports),
  }));
  const nyVms = b.vms?.map((v) => v.name) ?? VMS;
  for (const { site, p } of hosts) {
    await waitForHost(api, p, site, site === NEW_YORK ? nyVms : [], b.signal);
    say(
      `- host ${site.host} enrolled with ${site.server} on ${site.ip}` +
        (site === NEW_YORK ? `, running ${nyVms.join(' and ')}` : '') +
        ` (log: ${p.log})\n`,
    );
  }
}

/**
 * True once the host's log says its link to the provider is connected. The coordinator's API
 * lists no hosts, only their VMs, and Chicago's host has none yet: its own log is what tells
 * the demo it has enrolled and reports to its provider.
 */
function linkConnected(log: string): boolean {
  let text: string;
  try {
    text = readFileSync(log, 'utf8');
  } catch {
    return false;
  }
  return text.split('\n').some((line) => {
    if (!line.includes('provider link state')) return false;
    try {
      return (JSON.parse(line) as { state?: unknown }).state === 'connected';
    } catch {
      return false;
    }
  });
}

/** Waits until the host runs, is linked to its provider and (New York) reports its VMs. */
async function waitForHost(
  api: ApiClient,
  host: DemoProcess,
  site: SiteSpec,
  expectVms: readonly string[],
  signal: AbortSignal,
): Promise<void> {
  await poll(
    `host ${site.host} to enrol and connect to its provider`,
    () => {
      if (!isRunning(host)) throw exitedError(host);
      return linkConnected(host.log) ? true : undefined;
    },
    { signal, timeoutMs: 60_000, log: host.log },
  );
  if (expectVms.length === 0) return;
  await poll(
    `${expectVms.join(' and ')} running on ${site.host}`,
    async () => {
      const vms = await api.listVms(VAULT, `${site.server}/${site.cloud}`);
      const up = vms.filter(
        (v) => v.host === site.host && v.state === 'running' && expectVms.includes(v.name),
      );
      return up.length === expectVms.length ? true : undefined;
    },
    { signal, timeoutMs: 60_000, log: host.log },
  );
}
