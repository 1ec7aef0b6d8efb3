import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger as log } from '../../../common/log/log.ts';
import { FakeClock } from '../../../common/time/clock.ts';
import { HostCommandLog } from '../enrolment/command-log.ts';
import { hostCommands } from '../enrolment/host-commands.ts';
import { hostInventory } from '../enrolment/host-inventory.ts';
import type { VmManager } from '../vm/vm-manager.ts';
import { HostBandwidth } from './bandwidth-limiter.ts';
import type { ReplicationOps } from './replication-ops.ts';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ss-bw-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('set_bandwidth on the host', () => {
  const vms = { list: () => [] } as unknown as VmManager;
  const command = {
    commandId: 'bandwidth.hv1.r1',
    kind: 'setBandwidth' as const,
    setBandwidth: {
      limitBytesPerSecond: '0',
      windows: [{ start: '08:00', end: '18:00', bytesPerSecond: '20000000' }],
      priorities: [{ name: 'db', priority: 'high' }],
    },
  };

  it('applies the cap, keeps it across a restart and reports it in the inventory', async () => {
    const clock = new FakeClock();
    const bandwidth = new HostBandwidth({ dataDir: dir, clock, log });
    const ops = { bandwidth, status: async () => undefined } as unknown as ReplicationOps;
    const cmds = hostCommands(vms, await HostCommandLog.open(dir), { ops, vault: 'prod' });
    expect((await cmds.run(command)).error).toBeNull();
    expect(bandwidth.setting).toEqual({
      limit: null,
      windows: [{ start: 480, end: 1080, bytesPerSecond: 20_000_000 }],
      priorities: { db: 'high' },
    });
    const inv = await hostInventory(vms, ops);
    expect(inv.bandwidth).toEqual(command.setBandwidth);
    // A restarted agent reads it back.
    const again = new HostBandwidth({ dataDir: dir, clock, log });
    expect(again.setting).toEqual(bandwidth.setting);
  });

  it('refuses a bad window naming the field, and changes nothing', async () => {
    const bandwidth = new HostBandwidth({ dataDir: dir, clock: new FakeClock(), log });
    const ops = { bandwidth, status: async () => undefined } as unknown as ReplicationOps;
    const cmds = hostCommands(vms, await HostCommandLog.open(dir), { ops, vault: 'prod' });
    const bad = {
      ...command,
      commandId: 'bad',
      setBandwidth: {
        ...command.setBandwidth,
        windows: [{ start: '8 am', end: '18:00', bytesPerSecond: '1' }],
      },
    };
    const r = await cmds.run(bad);
    expect(r.error).toMatchObject({ code: 'SS_BAD_INPUT' });
    expect(r.error?.message).toContain('setBandwidth.windows.0.start');
    expect(bandwidth.setting.limit).toBeNull();
    expect(bandwidth.setting.windows).toEqual([]);
  });

  it('reports how long a VM waited for the cap (accounting through the clock)', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 12));
    const bandwidth = new HostBandwidth(
      { clock, log },
      { limit: 1_000_000, windows: [], priorities: {} },
    );
    // The burst (1 MB) goes at once, the next MB into debt; then one byte waits a second.
    await bandwidth.acquire('vm1', 1_000_000);
    await bandwidth.acquire('vm1', 1_000_000);
    let done = false;
    const waiting = bandwidth.acquire('vm1', 1).then(() => (done = true));
    await Promise.resolve();
    expect(done).toBe(false);
    expect(bandwidth.waitedMs('vm1')).toBe(0);
    clock.advance(1_000);
    // Re-applying the setting polls the bucket now (the fake clock moved, not the timer).
    bandwidth.set({ limit: 1_000_000, windows: [], priorities: {} });
    await waiting;
    expect(bandwidth.waitedMs('vm1')).toBe(1_000);
    expect(bandwidth.grantedByWindow().get('default')).toBe(2_000_001);
    bandwidth.close();
  });
});
