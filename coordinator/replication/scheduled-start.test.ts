/**
 * Scheduled initial replication (R15, issue 8 item 2): the item waits in initial-replication
 * with its start time shown; when the time comes the watcher resumes the source (pause_vm
 * paused:false) once, under an id of the item's own, across coordinator restarts: before the
 * time, and between sending the command and its answer. The coordinator's parts are real (the
 * store, the service, the watcher); the hub and the host reports are fakes, the clock is set.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log/log.ts';
import type { HostCommand } from '../../common/wire/host-control-messages.ts';
import type { ChannelHub } from '../channel/channel-hub.ts';
import { applyEvent, newItem } from '../domain/protection.ts';
import type { HostRecord, VmInventory } from '../inventory/vm-inventory.ts';
import type { JobRunner } from '../jobs/job-runner.ts';
import { openMemoryStore } from '../store/level-store.ts';
import type { Store } from '../store/store.ts';
import type { VaultService } from '../vaults/vault-service.ts';
import { ProtectionService, type ProtectionDeps } from './protection-service.ts';
import { waitFor } from '../../test/helpers/wait-for.ts';

const T0 = Date.parse('2026-11-26T01:00:00Z');
const STARTS = T0 + 5_000;

function sourceHost(now: () => number, paused: () => boolean): HostRecord {
  return {
    vaultId: 'v1',
    server: 'VMM-A',
    host: 'hv-a',
    hostGroup: 'G',
    cloud: 'C1',
    connected: true,
    reportedAt: new Date(now()).toISOString(),
    vms: [
      {
        name: 'VM1',
        state: 'running',
        disks: [{ index: 0, sizeBytes: 1 << 20, nbd: null }],
        nics: [],
        replication: {
          role: 'primary',
          senderState: paused() ? 'paused' : 'initial-copy',
          lastError: '',
          baseline: 'initial-copy-required',
          epoch: 1,
          copyDone: 0,
          copyTotal: 0,
          latestPoint: null,
          pointCount: 0,
          unshippedBytes: 0,
          paused: paused(),
        },
      },
    ],
  } as unknown as HostRecord;
}

interface Sent {
  readonly id: string;
  readonly command: HostCommand;
}

/** A coordinator process: the service over `store`, with a hub that answers or hangs. */
function coordinator(store: Store, clock: { t: number }, hub: { answer: boolean; sent: Sent[] }) {
  let paused = true;
  const deps = {
    store,
    clock: { now: () => clock.t },
    log: silentLogger,
    vaults: {
      list: async () => [{ id: 'v1', name: 'prod' }],
      byName: async () => ({ id: 'v1', name: 'prod' }),
    } as unknown as VaultService,
    vms: {
      hosts: async () => [
        sourceHost(
          () => clock.t,
          () => paused,
        ),
      ],
    } as unknown as VmInventory,
    hub: {
      heartbeatMs: 1000,
      liveness: () => ({ open: true, lastHeartbeatAt: clock.t }),
      sendCommand: (a: { commandId: string; command: { host: { command: HostCommand } } }) => {
        const command = a.command.host.command;
        hub.sent.push({ id: a.commandId, command });
        if (!hub.answer) return new Promise(() => undefined); // the process dies first
        if (command.pauseVm?.paused === false) paused = false;
        return Promise.resolve({ host: { commandId: a.commandId, error: null } });
      },
    } as unknown as ChannelHub,
    policies: { get: async () => undefined, protectionOf: async () => undefined },
    maps: { list: async () => [] },
    targetSite: async () => {
      throw new Error('not used');
    },
  } satisfies ProtectionDeps;
  const svc = new ProtectionService(deps);
  svc.setJobs({ onUpdate: () => undefined, submit: async () => ({}) } as unknown as JobRunner);
  return svc;
}

describe('scheduled initial replication', () => {
  it('shows the start time, resumes the source on time once, across coordinator restarts', async () => {
    const store = await openMemoryStore();
    const clock = { t: T0 };
    const hub = { answer: true, sent: [] as Sent[] };
    const first = coordinator(store, clock, hub);
    const item = newItem({
      vaultId: 'v1',
      vm: 'VM1',
      policy: 'gold',
      sourceServer: 'VMM-A',
      sourceCloud: 'C1',
      sourceHost: 'hv-a',
      targetServer: 'VMM-B',
      targetCloud: 'C2',
      epoch: 1,
      now: T0,
      initialStartsAt: STARTS,
    });
    await first.items.put({ ...applyEvent(item, 'initial-started', T0), targetHost: 'hv-b' });

    await first.sweep();
    expect(hub.sent).toEqual([]);
    const shown = await first.show('prod', 'VM1');
    expect(shown.state).toBe('initial-replication');
    expect(shown.initialReplication).toMatchObject({ startsAt: new Date(STARTS).toISOString() });

    // Restart before the time: nothing is sent yet by the new process either.
    const second = coordinator(store, clock, { ...hub, answer: false });
    clock.t = STARTS - 1;
    await second.sweep();
    expect(hub.sent).toEqual([]);

    // The time comes; the command goes, but this process dies before the answer.
    clock.t = STARTS;
    const hanging = { answer: false, sent: [] as Sent[] };
    const third = coordinator(store, clock, hanging);
    await third.sweep();
    expect(hanging.sent).toHaveLength(1);
    expect(hanging.sent[0]!.command.pauseVm).toEqual({ name: 'VM1', paused: false });
    await third.sweep(); // one command in flight at a time
    expect(hanging.sent).toHaveLength(1);
    expect((await third.items.require('v1', 'VM1')).initialStart?.started).toBe(false);

    // The next process sends the same id (the host applies it once), and records the start.
    clock.t = STARTS + 2_000;
    const answered = { answer: true, sent: [] as Sent[] };
    const fourth = coordinator(store, clock, answered);
    await fourth.sweep();
    await waitFor(async () => (await fourth.items.require('v1', 'VM1')).initialStart?.started, {
      what: 'the start recorded',
    });
    expect(answered.sent.map((s) => s.id)).toEqual([hanging.sent[0]!.id]);
    expect(answered.sent[0]!.id).toBe('initial-start.VM1.e1');

    // Started: later rounds and restarts send nothing more.
    await fourth.sweep();
    await coordinator(store, clock, answered).sweep();
    expect(answered.sent).toHaveLength(1);
  });
});
