/**
 * A provider with enrolled host agents, all in this process over real sockets, for the relayed
 * host command tests: the site file declares hosts hv-a and hv-b (one cloud each) and VM app1
 * on hv-a; each host agent is built from the same parts as `secondsite host start` (enrolment
 * with the join token, the VM manager, replication on its own loopback address with port 0,
 * the control stream to the provider). Commands are sent the way the coordinator sends them:
 * an AgentCommand `{ host: { host, command } }` into the provider's dispatcher.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureEnrolled } from '../../agent/host/enrolment/enrol.ts';
import { createProviderLink, type ProviderLink } from '../../agent/host/enrolment/provider-link.ts';
import { compileHostConfig } from '../../agent/host/config.ts';
import { createHostAgent, type HostAgent } from '../../agent/host/host-agent.ts';
import type { RecoveryPointRecord } from '../../agent/host/journal/types.ts';
import type { StartedProvider } from '../../agent/provider/main.ts';
import type { ApiClient } from '../../common/api-client/index.ts';
import { silentLogger } from '../../common/log/log.ts';
import { systemClock } from '../../common/time/clock.ts';
import type { AgentCommand, AgentCommandResult } from '../../common/wire/agent-channel-messages.ts';
import type {
  HostCommand,
  HostInventoryReport,
  HostVmMsg,
  PairHostVmCommand,
} from '../../common/wire/host-control-messages.ts';
import { expect } from 'vitest';
import { run } from './nbd.ts';
import { ProviderLab } from './provider-lab.ts';
import { waitFor } from './wait-for.ts';

export const RELAY_SITE = {
  server: 'VMM-Relay',
  clouds: [
    { name: 'PrimaryCloud', hostGroups: ['GA'] },
    { name: 'RecoveryCloud', hostGroups: ['GB'] },
  ],
  hostGroups: [{ name: 'GA' }, { name: 'GB' }],
  hosts: [
    { name: 'hv-a', hostGroup: 'GA', osVersion: '2012R2' },
    { name: 'hv-b', hostGroup: 'GB', osVersion: '2012R2' },
  ],
  logicalNetworks: [{ name: 'LN', clouds: ['PrimaryCloud', 'RecoveryCloud'] }],
  vmNetworks: [
    { name: 'Net-A', logicalNetwork: 'LN', subnets: [{ name: 'web', prefix: '10.1.0.0/24' }] },
    { name: 'Net-B', logicalNetwork: 'LN', subnets: [{ name: 'web', prefix: '10.2.0.0/24' }] },
  ],
  storageClassifications: [{ name: 'GOLD', locations: [{ host: 'hv-a', path: '/srv/hv-a/gold' }] }],
  vms: [
    {
      name: 'app1',
      host: 'hv-a',
      state: 'running',
      disks: [{ size: '16MiB', classification: 'GOLD' }],
      nics: [{ network: 'Net-A', subnet: 'web' }],
    },
  ],
};

export function writeRelaySite(lab: ProviderLab): string {
  const path = lab.path('relay-site.json');
  writeFileSync(path, JSON.stringify(RELAY_SITE, null, 2));
  return path;
}

export interface LinkedHost {
  readonly name: string;
  readonly data: string;
  readonly agent: HostAgent;
  /** Ends the control stream (the host agent keeps running). */
  disconnect(): Promise<void>;
  /** Opens a new control stream. */
  connect(): Promise<void>;
  stop(): Promise<void>;
}

/** Enrols `name` with the provider and runs its host agent and control stream. */
export async function startLinkedHost(
  lab: ProviderLab,
  provider: StartedProvider,
  name: string,
  address: string,
  /** The replication port; a restarted host keeps its own so that peers reach it. @default 0 */
  certPort = 0,
  /** The ticket port (8083). @default 0 */
  ticketPort = 0,
): Promise<LinkedHost> {
  const data = lab.path(name);
  const target = `127.0.0.1:${provider.agent.hosts.port}`;
  const identity = await ensureEnrolled({
    dataDir: data,
    name,
    provider: target,
    tokenFile: join(provider.dataDir, 'host-join-token'),
    address,
    now: () => Date.now(),
    log: silentLogger,
  });
  const config = compileHostConfig({
    data,
    name,
    provider: target,
    address,
    certPort: String(certPort),
    ticketPort: String(ticketPort),
  });
  const agent = createHostAgent(config, systemClock, silentLogger);
  const abort = new AbortController();
  const running = agent.run(abort.signal);
  let link: { link: ProviderLink; done: Promise<void>; stop: AbortController } | undefined;
  const connect = async (): Promise<void> => {
    const made = await createProviderLink({
      dataDir: data,
      identity,
      vms: agent.vms,
      ops: agent.ops,
      endpoint: () => agent.endpoint(),
      ...(agent.tickets ? { tickets: agent.tickets } : {}),
      version: 'test',
      log: silentLogger,
    });
    const stop = new AbortController();
    link = { link: made, done: made.run(stop.signal), stop };
    await waitFor(() => made.state() === 'connected', { what: `${name}'s control stream` });
  };
  const disconnect = async (): Promise<void> => {
    const l = link;
    link = undefined;
    if (!l) return;
    l.stop.abort();
    await l.link.shutdown();
    await l.done;
  };
  await connect();
  return {
    name,
    data,
    agent,
    connect,
    disconnect,
    async stop() {
      await disconnect();
      abort.abort();
      await running.catch(() => undefined);
      await agent.shutdown();
    },
  };
}

/** Sends commands to hosts as the coordinator does, through the provider's dispatcher. */
export function relayer(provider: StartedProvider) {
  let n = 0;
  return (
    host: string,
    command: Omit<HostCommand, 'commandId'>,
    id = `relay-${++n}`,
  ): Promise<AgentCommandResult> =>
    provider.agent.commands.dispatch(id, {
      host: { host, command: { commandId: '', ...command } },
    } as AgentCommand);
}

/** The provider's last report of `host` (what the coordinator holds). */
export function reportOf(provider: StartedProvider, host: string): HostInventoryReport {
  const r = provider.agent.hosts.registry.reports().find((x) => x.host === host);
  if (!r) throw new Error(`the provider has no report of ${host}`);
  return r;
}

/** `vm` as the provider last heard of it from `host`. */
export function reportedVm(
  provider: StartedProvider,
  host: string,
  vm: string,
): HostVmMsg | undefined {
  return reportOf(provider, host).inventory.vms.find((v) => v.name === vm);
}

/** The relay lab's parts: a coordinator (vault "prod"), a provider, hv-a and hv-b linked to it. */
export interface RelayLab {
  readonly lab: ProviderLab;
  readonly api: ApiClient;
  /** The coordinator's admin.json, for `secondsite … --config`. */
  readonly adminFile: string;
  readonly provider: StartedProvider;
  readonly a: LinkedHost;
  readonly b: LinkedHost;
  readonly relay: ReturnType<typeof relayer>;
}

/** Starts the relay lab on the site file `site` writes (stopping what started if a step fails). */
export async function startRelayLab(
  site: (lab: ProviderLab) => string = writeRelaySite,
  /** hv-a's and hv-b's loopback addresses (a test's own range). */
  ips: { a: string; b: string } = { a: '127.0.1.1', b: '127.0.2.1' },
): Promise<RelayLab> {
  const lab = new ProviderLab();
  const hosts: LinkedHost[] = [];
  try {
    const c = await lab.coordinator();
    await c.api.createVault('prod');
    const provider = await lab.provider({
      data: lab.path('provider'),
      key: await lab.key(c.api, 'prod'),
      site: site(lab),
    });
    hosts.push(await startLinkedHost(lab, provider, 'hv-a', ips.a));
    hosts.push(await startLinkedHost(lab, provider, 'hv-b', ips.b));
    const [a, b] = hosts as [LinkedHost, LinkedHost];
    return { lab, api: c.api, adminFile: c.adminFile, provider, a, b, relay: relayer(provider) };
  } catch (e) {
    await stopRelayLab(lab, ...hosts);
    throw e;
  }
}

/** Stops the given hosts in order, then the lab (for afterAll; tolerates a failed start). */
export async function stopRelayLab(
  lab: ProviderLab | undefined,
  ...hosts: Array<LinkedHost | undefined>
): Promise<void> {
  for (const h of hosts) await h?.stop();
  await lab?.cleanup();
}

/** The NBD URI of disk 0 of `vm` running on `host` (throws if it is not running there). */
export function nbdOfVm(host: LinkedHost, vm: string): string {
  const uri = host.agent.vms.list().find((v) => v.config.name === vm)?.runtime?.nbd[0];
  if (!uri) throw new Error(`${vm} is not running on ${host.name}`);
  return uri;
}

/** Runs a tool to its end; its stdout and stderr joined (the exports it talks to are served here). */
export async function tool(
  cmd: string,
  ...args: string[]
): Promise<{ code: number | null; out: string }> {
  const r = await run(cmd, args);
  return { code: r.code, out: r.stdout.toString() + r.stderr };
}

/** Runs qemu-io commands on a raw export, then a flush; fails the test on a non-zero exit. */
export async function qemuIoFlushed(uri: string, ...cmds: string[]): Promise<void> {
  const r = await tool(
    'qemu-io',
    '-f',
    'raw',
    uri,
    ...cmds.flatMap((c) => ['-c', c]),
    '-c',
    'flush',
  );
  expect(r.code, r.out).toBe(0);
}

/** Copies the whole raw image at `uri` (an export or a file) to `out`; fails the test on an error. */
export async function exportToFile(uri: string, out: string): Promise<string> {
  const r = await tool('qemu-img', 'convert', '-f', 'raw', '-O', 'raw', uri, out);
  expect(r.code, r.out).toBe(0);
  return out;
}

/** `qemu-img compare` of two raw images (files or exports): its exit code and output. */
export function compareImages(x: string, y: string): Promise<{ code: number | null; out: string }> {
  return tool('qemu-img', 'compare', '-q', '-f', 'raw', '-F', 'raw', x, y);
}

/** Whether two raw images (files or exports) hold the same bytes. */
export async function imagesIdentical(x: string, y: string): Promise<boolean> {
  return (await compareImages(x, y)).code === 0;
}

/** `host`'s replica copy of disk 0 of `vm` at `pointId`, read into `out`. */
export async function pointToFile(
  host: LinkedHost,
  vm: string,
  pointId: string,
  out: string,
): Promise<string> {
  await host.agent.replication.readToFile(vm, 0, pointId, out);
  return out;
}

/** The last segment of `vm` that `host` reported acknowledged by its replica (NaN if none). */
export function ackedSeq(provider: StartedProvider, host: string, vm: string): number {
  return Number(reportedVm(provider, host, vm)?.replication?.lastAckedSeq);
}

/** Cuts a crash-consistent point of `vm` on `host` and waits until the replica acknowledged it. */
export async function cutAndShip(
  provider: StartedProvider,
  host: LinkedHost,
  vm: string,
  opts: { timeoutMs?: number } = {},
): Promise<RecoveryPointRecord> {
  const point = await host.agent.vms.cut(vm, 'crash-consistent');
  await waitFor(() => ackedSeq(provider, host.name, vm) >= point.segment, {
    what: `${vm} segment ${point.segment} acked`,
    ...opts,
  });
  return point;
}

/** Waits until the provider's report shows `vm` running on `host`; returns it as reported. */
export function vmRunning(provider: StartedProvider, host: string, vm: string): Promise<HostVmMsg> {
  return waitFor(
    () => {
      const v = reportedVm(provider, host, vm);
      return v?.state === 'HOST_VM_STATE_RUNNING' ? v : undefined;
    },
    { what: `${vm} running on ${host}` },
  );
}

/** Waits until the provider has `host`'s replication port (its certPort); returns it. */
export function replicationPortOf(provider: StartedProvider, host: string): Promise<number> {
  return waitFor(() => reportOf(provider, host).certPort || undefined, {
    what: `${host}'s replication port`,
  });
}

/**
 * pair_vm for the replica side of `vm` (disks of `diskBytes`, placed in the host's default
 * layout, compressed, 24 h of points); `over` changes what a test needs.
 */
export function replicaPairing(
  vm: string,
  peerHost: string,
  diskBytes: number,
  over: Partial<PairHostVmCommand> = {},
): PairHostVmCommand {
  return {
    name: vm,
    role: 'replica',
    peerHost,
    peerAddress: '',
    epoch: '1',
    compression: true,
    disks: [{ sizeBytes: String(diskBytes), path: '' }],
    copyFrequencySeconds: 0,
    appConsistentHours: 0,
    retentionHours: 24,
    nics: [],
    startInitialCopy: false,
    ...over,
  };
}

/** pair_vm for the primary side of `vm` towards `peerAddress` (30 s cycles, copy started). */
export function primaryPairing(
  vm: string,
  peerHost: string,
  peerAddress: string,
  over: Partial<PairHostVmCommand> = {},
): PairHostVmCommand {
  return {
    name: vm,
    role: 'primary',
    peerHost,
    peerAddress,
    epoch: '1',
    compression: true,
    disks: [],
    copyFrequencySeconds: 30,
    appConsistentHours: 0,
    retentionHours: 0,
    nics: [],
    startInitialCopy: true,
    ...over,
  };
}

/**
 * Protects `vm` on the relay lab's one server through the coordinator API, as an admin would:
 * a policy (`auth`, `copyFrequency`), PrimaryCloud → RecoveryCloud, the network and storage
 * maps of RELAY_SITE, then `replication enable`, waiting for its job to succeed.
 */
export async function protectThroughApi(
  api: ApiClient,
  o: {
    server: string;
    vm: string;
    policy: string;
    auth: 'certificate' | 'kerberos';
    copyFrequency: '30s' | '5m' | '15m';
    timeoutMs: number;
  },
): Promise<void> {
  const s = o.server;
  await api.createPolicy('prod', { name: o.policy, copyFrequency: o.copyFrequency, auth: o.auth });
  await api.associatePolicy('prod', o.policy, {
    sourceCloud: `${s}/PrimaryCloud`,
    targetCloud: `${s}/RecoveryCloud`,
  });
  await api.createMap('prod', 'network', { source: `${s}/Net-A`, target: `${s}/Net-B` });
  await api.createMap('prod', 'storage', { source: `${s}/GOLD`, target: `${s}/GOLD-B` });
  const job = (await api.enableReplication('prod', `${s}/PrimaryCloud`, [o.vm])) as {
    id: string;
  };
  await waitFor(
    async () => {
      const j = (await api.getJob(job.id)) as { state: string; error: unknown };
      if (j.state === 'failed') throw new Error(`enable failed: ${JSON.stringify(j.error)}`);
      return j.state === 'succeeded' || undefined;
    },
    { what: 'the enable job', timeoutMs: o.timeoutMs },
  );
}
