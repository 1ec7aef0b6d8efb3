import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../common/time/clock.ts';
import type { HostInventoryReport } from '../../common/wire/host-control-messages.ts';
import { openMemoryStore } from '../store/level-store.ts';
import { VmInventory } from './vm-inventory.ts';

function report(host: string, cloud: string, names: string[]): HostInventoryReport {
  return {
    host,
    hostGroup: `${host}-group`,
    cloud,
    connected: true,
    inventory: {
      vms: names.map((name, i) => ({
        name,
        state: i === 0 ? 'HOST_VM_STATE_RUNNING' : 'HOST_VM_STATE_STOPPED',
        disks: [
          { index: 0, sizeBytes: '1048576', nbd: i === 0 ? `nbd+unix:///${name}-0?socket=/s` : '' },
        ],
        nics: [{ network: 'net', subnet: '' }],
      })),
    },
  };
}

describe('VmInventory', () => {
  it('keeps the last report per host, lists by server and name, filters by cloud', async () => {
    const vms = new VmInventory(await openMemoryStore(), new FakeClock());
    await vms.report('v1', 'NY', report('h1', 'Gold', ['b', 'a']));
    await vms.report('v1', 'NY', report('h2', '', ['c']));
    await vms.report('v1', 'CHI', report('h3', 'Gold2', ['a']));
    await vms.report('v2', 'NY', report('h1', 'Gold', ['other-vault']));
    expect((await vms.list('v1')).map((v) => `${v.server}/${v.name}`)).toEqual([
      'CHI/a',
      'NY/a',
      'NY/b',
      'NY/c',
    ]);
    expect(await vms.show('v1', 'NY/b')).toEqual({
      name: 'b',
      server: 'NY',
      cloud: 'Gold',
      host: 'h1',
      state: 'running',
      role: 'none',
      disks: [{ index: 0, sizeBytes: 1048576, nbd: 'nbd+unix:///b-0?socket=/s' }],
      nics: [{ network: 'net', subnet: '' }],
    });
    expect((await vms.show('v1', 'ny/c')).cloud).toBeNull();
    expect((await vms.list('v1', 'NY/Gold')).map((v) => v.name)).toEqual(['a', 'b']);
    // A new report replaces the host's VMs.
    await vms.report('v1', 'NY', report('h1', 'Gold', ['b']));
    expect((await vms.list('v1', 'NY/Gold')).map((v) => v.name)).toEqual(['b']);
  });

  it('resolves a bare name only when one server has it', async () => {
    const vms = new VmInventory(await openMemoryStore(), new FakeClock());
    await vms.report('v1', 'NY', report('h1', 'Gold', ['a', 'b']));
    await vms.report('v1', 'CHI', report('h3', 'Gold2', ['a']));
    expect((await vms.show('v1', 'b')).server).toBe('NY');
    await expect(vms.show('v1', 'a')).rejects.toMatchObject({ code: 'SS_CONFLICT' });
    await expect(vms.show('v1', 'zz')).rejects.toMatchObject({ code: 'SS_NOT_FOUND' });
    await expect(vms.show('v1', 'a/b/c')).rejects.toMatchObject({ code: 'SS_BAD_INPUT' });
    await expect(vms.list('v1', 'nocloud')).rejects.toMatchObject({ code: 'SS_BAD_INPUT' });
  });
});
