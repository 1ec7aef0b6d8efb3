import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../common/time/clock.ts';
import type { HostVmMsg } from '../../common/wire/host-control-messages.ts';
import { VmInventory } from '../inventory/vm-inventory.ts';
import { PolicyService } from '../policies/policy-service.ts';
import { newItem } from '../domain/protection.ts';
import { ItemRepo } from '../replication/item-repo.ts';
import { openMemoryStore } from '../store/level-store.ts';
import { VaultService } from '../vaults/vault-service.ts';
import { CapacityService } from './capacity-service.ts';

const MB = 1_000_000;
const GiB = 1024 ** 3;

function vm(name: string, churn: HostVmMsg['churn']): HostVmMsg {
  return {
    name,
    state: 'HOST_VM_STATE_RUNNING',
    disks: [{ index: 0, sizeBytes: String(10 * GiB), nbd: '' }],
    nics: [],
    churn,
  };
}

async function setup() {
  const store = await openMemoryStore();
  const clock = new FakeClock();
  const vaults = new VaultService(store, clock);
  const vault = await vaults.create('prod');
  const vms = new VmInventory(store, clock);
  const policies = new PolicyService(store, clock);
  await policies.create(vault.id, {
    name: 'gold',
    copyFrequency: '5m',
    retentionHours: '2',
    compression: 'off',
  });
  const disk = (fiveMinutes: number) => ({
    index: 0,
    bytes: String(fiveMinutes * 10),
    avgBytesPerHour: String(fiveMinutes * 2),
    peakMinuteBytes: String(fiveMinutes),
    peakFiveMinutesBytes: String(fiveMinutes),
    peakQuarterHourBytes: String(fiveMinutes),
    peakHourBytes: String(fiveMinutes * 2),
  });
  // Host reports as the provider relays them (strings for 64-bit numbers).
  await vms.report(vault.id, 'NY', {
    host: 'ny-hv1',
    hostGroup: 'g',
    cloud: 'Gold',
    connected: true,
    inventory: {
      vms: [
        vm('db', {
          windowMinutes: 1440,
          disks: [disk(3000 * MB)], // 10 MB/s over the busiest 5 minutes
          hotRegions: [{ disk: 0, offset: '0', length: String(64 << 20), bytes: '1' }],
        }),
        vm('idle', null),
      ],
    },
  });
  const items = new ItemRepo(store);
  const service = new CapacityService({ vaults, vms, items, policies });
  return { service, vault, vms, items, policies };
}

describe('CapacityService.plan', () => {
  it('plans the VMs a host reported under --policy, at --bandwidth', async () => {
    const { service } = await setup();
    const plan = await service.plan('prod', { policy: 'gold', bandwidth: '8', cloud: 'NY/Gold' });
    expect(plan.linkBytesPerSecond).toBe(8 * MB);
    const db = plan.vms.find((v) => v.vm === 'db')!;
    expect(db).toMatchObject({
      protected: false,
      policy: 'gold',
      requiredBytesPerSecond: 10 * MB,
      undoBytes: 10 * GiB, // 2 h × 6 GB/h = 12 GB, capped by the 10 GiB disk
      carried: false,
    });
    expect(plan.total.notCarried).toEqual(['db']);
    expect(plan.vms.find((v) => v.vm === 'idle')!.note).toContain('no churn measured');
    // JSON-safe for `capacity plan --json`.
    expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
  });

  it('takes the bucket length a development host reports with its churn', async () => {
    const { service, vault, vms } = await setup();
    // 6 s buckets: the 5-minute policy's window is the 60-bucket one (6 minutes).
    await vms.report(vault.id, 'NY', {
      host: 'ny-hv1',
      hostGroup: 'g',
      cloud: 'Gold',
      connected: true,
      inventory: {
        vms: [
          vm('db', {
            windowMinutes: 100,
            bucketMs: 6_000,
            disks: [
              {
                index: 0,
                bytes: String(720 * MB),
                avgBytesPerHour: String(4320 * MB),
                peakMinuteBytes: String(12 * MB),
                peakFiveMinutesBytes: String(60 * MB),
                peakQuarterHourBytes: String(180 * MB),
                peakHourBytes: String(720 * MB),
              },
            ],
            hotRegions: [],
          }),
        ],
      },
    });
    const db = (await service.plan('prod', { policy: 'gold' })).vms.find((v) => v.vm === 'db')!;
    expect(db).toMatchObject({
      requiredBytesPerSecond: 2 * MB, // 720 MB / 360 s
      measuredMinutes: 10,
      churnPeakBytesPerHour: 7200 * MB,
    });
  });

  it('refuses a bad bandwidth naming the field; an unknown policy is not found', async () => {
    const { service } = await setup();
    await expect(service.plan('prod', { bandwidth: 'fast' })).rejects.toMatchObject({
      code: 'SS_BAD_INPUT',
      details: { field: 'bandwidth' },
    });
    await expect(service.plan('prod', { policy: 'nope' })).rejects.toMatchObject({
      code: 'SS_NOT_FOUND',
    });
  });

  it('without a policy or association: listed with no policy', async () => {
    const { service } = await setup();
    const plan = await service.plan('prod', {});
    expect(plan.vms.map((v) => [v.vm, v.policy])).toEqual([
      ['db', null],
      ['idle', null],
    ]);
  });

  it('a protected VM: its compression as its replica host counted what it received', async () => {
    const { service, vault, vms, items, policies } = await setup();
    await policies.create(vault.id, { name: 'zip', copyFrequency: '5m', compression: 'on' });
    await items.put({
      ...newItem({
        vaultId: vault.id,
        vm: 'db',
        policy: 'zip',
        sourceServer: 'NY',
        sourceCloud: 'Gold',
        sourceHost: 'ny-hv1',
        targetServer: 'CHI',
        targetCloud: 'Gold2',
        epoch: 1,
        now: 0,
      }),
      targetHost: 'chi-hv1',
    });
    const received = (raw: number, wire: number): HostVmMsg => ({
      ...vm('db', null),
      replication: {
        role: 'replica',
        peer: '',
        state: 'idle',
        lastAckedSeq: '9',
        lastError: '',
        lastShippedAtMs: '0',
        peerAddress: '',
        epoch: '1',
        baseline: 'zero',
        copyBytesDone: '0',
        copyBytesTotal: '0',
        receivedRawBytes: String(raw),
        receivedWireBytes: String(wire),
      },
      role: 'replica',
    });
    const target = (raw: number, wire: number) =>
      vms.report(vault.id, 'CHI', {
        host: 'chi-hv1',
        hostGroup: 'g',
        cloud: 'Gold2',
        connected: true,
        inventory: { vms: [received(raw, wire)] },
      });
    const db = async () => (await service.plan('prod', {})).vms.find((v) => v.vm === 'db')!;
    // Before the replica reports anything: the assumed ratio, 10 MB/s raw → 5 MB/s.
    expect(await db()).toMatchObject({ requiredBytesPerSecond: 5 * MB, compressionRatio: 0.5 });
    // 100 MB of cycles that travelled at 80 MB: 10 MB/s raw needs 8 MB/s.
    await target(100 * MB, 80 * MB);
    expect(await db()).toMatchObject({
      protected: true,
      requiredBytesPerSecond: 8 * MB,
      compressionRatio: 0.8,
      compressionMeasured: true,
    });
  });
});
