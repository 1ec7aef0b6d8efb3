/**
 * Scheduled initial replication across a host restart (R15, issue 8 item 2): app1 is paired
 * the way enable pairs a scheduled item (the primary paired paused, startInitialCopy false),
 * the source host agent is restarted while the item waits, and at the start time the
 * coordinator's watcher (the real ProtectionService, its clock set; the hub a thin adapter
 * onto the provider's dispatcher, relay-lab.ts) sends its resume, which reaches the restarted
 * host through the provider; the initial copy runs then, and the replica ends bit-exact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartedProvider } from '../../agent/provider/main.ts';
import { silentLogger } from '../../common/log/log.ts';
import type { AgentCommand } from '../../common/wire/agent-channel-messages.ts';
import type { ChannelHub } from '../../coordinator/channel/channel-hub.ts';
import { applyEvent, newItem } from '../../coordinator/domain/protection.ts';
import type { VmInventory } from '../../coordinator/inventory/vm-inventory.ts';
import type { JobRunner } from '../../coordinator/jobs/job-runner.ts';
import {
  ProtectionService,
  type ProtectionDeps,
} from '../../coordinator/replication/protection-service.ts';
import { openMemoryStore } from '../../coordinator/store/level-store.ts';
import type { VaultService } from '../../coordinator/vaults/vault-service.ts';
import type { ProviderLab } from '../helpers/provider-lab.ts';
import {
  cutAndShip,
  imagesIdentical,
  nbdOfVm,
  pointToFile,
  qemuIoFlushed,
  replicationPortOf,
  reportOf,
  reportedVm,
  startLinkedHost,
  startRelayLab,
  stopRelayLab,
  vmRunning,
  type LinkedHost,
  type RelayLab,
  replicaPairing,
  primaryPairing,
} from '../helpers/relay-lab.ts';
import { waitFor } from '../helpers/wait-for.ts';

const MiB = 1024 * 1024;
const VM = 'app1';
const T0 = Date.parse('2026-11-26T01:00:00Z');
const STARTS = T0 + 60_000;

let lab: ProviderLab;
let provider: StartedProvider;
let a: LinkedHost;
let b: LinkedHost;
let relay: RelayLab['relay'];

const qemuIo = (...cmds: string[]): Promise<void> => qemuIoFlushed(nbdOfVm(a, VM), ...cmds);

const reported = () => reportedVm(provider, 'hv-a', VM)?.replication;

/** The coordinator's watcher over its own store; its commands go through the provider. */
function watcher(clock: { t: number }, sent: string[]) {
  const deps = {
    store: undefined as unknown as ProtectionDeps['store'],
    clock: { now: () => clock.t },
    log: silentLogger,
    vaults: {
      list: async () => [{ id: 'v1', name: 'prod' }],
      byName: async () => ({ id: 'v1', name: 'prod' }),
    } as unknown as VaultService,
    // No host records: the item's state is left as it is; only the start is watched here.
    vms: { hosts: async () => [] } as unknown as VmInventory,
    hub: {
      heartbeatMs: 1000,
      liveness: () => ({ open: true, lastHeartbeatAt: clock.t }),
      sendCommand: (c: { commandId: string; command: AgentCommand }) => {
        sent.push(c.commandId);
        return provider.agent.commands.dispatch(c.commandId, c.command);
      },
    } as unknown as ChannelHub,
    policies: { get: async () => undefined, protectionOf: async () => undefined },
    maps: { list: async () => [] },
    targetSite: async () => {
      throw new Error('not used');
    },
  } satisfies ProtectionDeps;
  return deps;
}

beforeAll(async () => {
  ({ lab, provider, a, b, relay } = await startRelayLab());
});

afterAll(() => stopRelayLab(lab, a, b));

describe('scheduled initial replication across a host restart', () => {
  it('the restarted source stays paused until the start time, then copies', async () => {
    await vmRunning(provider, 'hv-a', VM);
    const bPort = await replicationPortOf(provider, 'hv-b');
    await qemuIo('write -P 0xab 0 4M', 'write -P 0x3c 9M 3M');
    const replica = await relay('hv-b', { pairVm: replicaPairing(VM, 'hv-a', 16 * MiB) });
    expect(replica.error ?? null).toBeNull();
    // As enable pairs a scheduled item's source: paused, no initial copy started.
    const primary = await relay('hv-a', {
      pairVm: primaryPairing(VM, 'hv-b', `127.0.2.1:${bPort}`, { startInitialCopy: false }),
    });
    expect(primary.error ?? null).toBeNull();
    await waitFor(() => reported()?.state === 'paused', { what: 'the source paired paused' });

    const store = await openMemoryStore();
    const clock = { t: T0 };
    const sent: string[] = [];
    const deps = { ...watcher(clock, sent), store };
    const first = new ProtectionService(deps);
    first.setJobs({
      onUpdate: () => undefined,
      submit: async () => ({}),
    } as unknown as JobRunner);
    const item = newItem({
      vaultId: 'v1',
      vm: VM,
      policy: 'gold',
      sourceServer: 'VMM-Relay',
      sourceCloud: 'PrimaryCloud',
      sourceHost: 'hv-a',
      targetServer: 'VMM-Relay',
      targetCloud: 'RecoveryCloud',
      epoch: 1,
      now: T0,
      initialStartsAt: STARTS,
    });
    await first.items.put({ ...applyEvent(item, 'initial-started', T0), targetHost: 'hv-b' });
    await first.sweep();
    expect(sent).toEqual([]);

    // The guest writes while the item waits (journaled), then the source host restarts.
    await qemuIo('write -P 0x5c 2M 64k');
    const aPort = reportOf(provider, 'hv-a').certPort;
    await a.stop();
    await waitFor(() => !reportOf(provider, 'hv-a').connected, { what: 'hv-a gone' });
    a = await startLinkedHost(lab, provider, 'hv-a', '127.0.1.1', Number(aPort));
    await waitFor(
      () =>
        reportOf(provider, 'hv-a').connected &&
        reportedVm(provider, 'hv-a', VM)?.state === 'HOST_VM_STATE_RUNNING' &&
        reported()?.state === 'paused',
      { what: 'app1 running again on the restarted hv-a, still paused' },
    );
    expect(reported()?.baseline).toBe('initial-copy-required');
    expect(Number(reported()?.copyBytesTotal ?? 0)).toBe(0);
    await qemuIo('write -P 0x77 11M 1M');

    // Just before the time: nothing is sent.
    clock.t = STARTS - 1;
    await first.sweep();
    expect(sent).toEqual([]);
    expect(reported()?.state).toBe('paused');

    // The time comes: the resume reaches the restarted host, the initial copy runs.
    clock.t = STARTS;
    await first.sweep();
    await waitFor(async () => (await first.items.require('v1', VM)).initialStart?.started, {
      what: 'the scheduled start recorded',
    });
    expect(sent).toEqual([`initial-start.${VM}.e1`]);
    await waitFor(() => reported()?.baseline === 'copied', { what: 'the initial copy' });
    expect(Number(reported()?.copyBytesTotal)).toBe(16 * MiB);

    const point = await cutAndShip(provider, a, VM);
    const out = await pointToFile(b, VM, point.id, lab.path('scheduled.raw'));
    expect(await imagesIdentical(out, nbdOfVm(a, VM))).toBe(true);
  });
});
