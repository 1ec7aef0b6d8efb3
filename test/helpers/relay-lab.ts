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
import type { StartedProvider } from '../../agent/provider/main.ts';
import { silentLogger } from '../../common/log/log.ts';
import { systemClock } from '../../common/time/clock.ts';
import type { AgentCommand, AgentCommandResult } from '../../common/wire/agent-channel-messages.ts';
import type {
  HostCommand,
  HostInventoryReport,
  HostVmMsg,
} from '../../common/wire/host-control-messages.ts';
import type { ProviderLab } from './provider-lab.ts';
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
