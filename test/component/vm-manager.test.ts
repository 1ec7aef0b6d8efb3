/**
 * The VM manager in-process over real NBD exports: protection switched on and off under a
 * connected guest, cuts, and VMs coming back after an agent restart.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createVmManager, type VmManager } from '../../agent/host/vm/vm-manager.ts';
import { NbdClient } from '../../common/nbd/client.ts';
import { silentLogger } from '../../common/log/log.ts';
import { systemClock } from '../../common/time/clock.ts';

const MiB = 1024 * 1024;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function manager(dataDir: string): VmManager {
  const m = createVmManager({
    dataDir,
    clock: systemClock,
    log: silentLogger,
    freezeTimeoutMs: 500,
  });
  cleanups.push(() => m.shutdown());
  return m;
}

function tempData(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ss-vmm-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('VM manager', () => {
  it('protects and unprotects a running VM without disconnecting its guest', async () => {
    const data = tempData();
    const vms = manager(data);
    await vms.createVm({ name: 'vm1', diskSizes: [4 * MiB, 2 * MiB], nics: [] });
    const started = await vms.startVm('vm1');
    const client = await NbdClient.connect(started.runtime!.nbd[0]!);
    cleanups.push(() => client.close());

    await client.write(0, Buffer.alloc(4096, 1));
    const protectedView = await vms.protectVm('vm1', {
      copyFrequencySeconds: 30,
      appConsistentHours: 0,
    });
    expect(protectedView.runtime?.journalState).toBe('journaling');
    await client.write(4096, Buffer.alloc(4096, 2), { fua: true });
    expect(vms.list()[0]!.runtime!.unshippedBytes).toBeGreaterThan(4096);
    const point = await vms.cut('vm1', 'crash-consistent');
    expect(vms.points('vm1').map((p) => p.id)).toEqual([point.id]);

    const unprotected = await vms.unprotectVm('vm1');
    expect(unprotected.config.protection).toBeUndefined();
    expect(unprotected.runtime?.journalState).toBe('');
    expect(existsSync(join(data, 'vms', 'vm1', 'journal'))).toBe(false);
    expect(vms.points('vm1')).toEqual([]);
    await client.write(8192, Buffer.alloc(4096, 3), { fua: true });

    const back = await client.read(0, 3 * 4096);
    expect([back[0], back[4096], back[8192]]).toEqual([1, 2, 3]);
    await expect(vms.cut('vm1', 'crash-consistent')).rejects.toMatchObject({ code: 'SS_CONFLICT' });
  });

  it('brings running VMs back after a restart, and leaves stopped ones stopped', async () => {
    const data = tempData();
    const first = manager(data);
    await first.createVm({ name: 'up', diskSizes: [MiB], nics: [{ network: 'n', subnet: '' }] });
    await first.createVm({ name: 'down', diskSizes: [MiB], nics: [] });
    await first.startVm('up');
    await first.protectVm('up', { copyFrequencySeconds: 300, appConsistentHours: 2 });
    const cut = await first.cut('up', 'crash-consistent');
    await first.shutdown();

    const second = manager(data);
    const stop = new AbortController();
    const running = second.run(stop.signal);
    cleanups.push(async () => {
      stop.abort();
      await running;
    });
    await expect
      .poll(() => second.list().find((v) => v.config.name === 'up')?.runtime)
      .toBeDefined();
    const up = second.list().find((v) => v.config.name === 'up')!;
    expect(up.config.protection).toMatchObject({
      copyFrequencySeconds: 300,
      appConsistentHours: 2,
    });
    expect(up.latestPoint?.id).toBe(cut.id);
    expect(second.list().find((v) => v.config.name === 'down')?.runtime).toBeUndefined();
  });

  it('refuses bad names, sizes and schedules as bad input', async () => {
    const vms = manager(tempData());
    await expect(vms.createVm({ name: 'a/b', diskSizes: [MiB], nics: [] })).rejects.toMatchObject({
      code: 'SS_BAD_INPUT',
    });
    await expect(vms.createVm({ name: 'ok', diskSizes: [1000], nics: [] })).rejects.toMatchObject({
      code: 'SS_BAD_INPUT',
    });
    await expect(vms.createVm({ name: 'ok', diskSizes: [], nics: [] })).rejects.toMatchObject({
      code: 'SS_BAD_INPUT',
    });
    await vms.createVm({ name: 'ok', diskSizes: [MiB], nics: [] });
    await expect(
      vms.protectVm('ok', { copyFrequencySeconds: 901, appConsistentHours: 0 }),
    ).rejects.toMatchObject({
      code: 'SS_BAD_INPUT',
    });
    await expect(
      vms.protectVm('ok', { copyFrequencySeconds: 30, appConsistentHours: 13 }),
    ).rejects.toMatchObject({
      code: 'SS_BAD_INPUT',
    });
    await expect(vms.startVm('missing')).rejects.toMatchObject({ code: 'SS_NOT_FOUND' });
  });
});
