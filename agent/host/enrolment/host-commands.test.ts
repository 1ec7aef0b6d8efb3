import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { PairHostVmCommand } from '../../../common/wire/host-control-messages.ts';
import { RevocationList } from '../../common/revocation.ts';
import type { ReplicationOps } from '../replication/replication-ops.ts';
import type { VmManager } from '../vm/vm-manager.ts';
import { HostCommandLog } from './command-log.ts';
import { hostCommands, pairRequest } from './host-commands.ts';

const base: PairHostVmCommand = {
  name: 'vm1',
  role: 'primary',
  peerHost: 'hv-b',
  peerAddress: '10.0.0.2:8084',
  epoch: '3',
  compression: true,
  disks: [{ sizeBytes: '16777216', path: '/srv/gold' }],
  copyFrequencySeconds: 300,
  appConsistentHours: 4,
  retentionHours: 0,
  nics: [{ network: 'Net', subnet: 'web' }],
  startInitialCopy: false,
};

describe('pair_vm as a pairing request', () => {
  it('takes only the fields of the role', () => {
    expect(pairRequest(base, 'prod')).toEqual({
      name: 'vm1',
      role: 'primary',
      peerHost: 'hv-b',
      peerAddress: '10.0.0.2:8084',
      vault: 'prod',
      epoch: 3,
      compression: true,
      protection: { copyFrequencySeconds: 300, appConsistentHours: 4 },
      paused: true, // the initial copy is not to start now
    });
    expect(pairRequest({ ...base, role: 'replica', retentionHours: 12 }, 'prod')).toEqual({
      name: 'vm1',
      role: 'replica',
      peerHost: 'hv-b',
      peerAddress: '10.0.0.2:8084',
      vault: 'prod',
      epoch: 3,
      compression: true,
      diskSizes: [16777216],
      diskFolders: ['/srv/gold'],
      nics: [{ network: 'Net', subnet: 'web' }],
      retentionHours: 12,
    });
  });

  it('refuses a malformed command naming the field', () => {
    expect(() => pairRequest({ ...base, role: 'both' as 'primary' }, 'prod')).toThrow(
      expect.objectContaining({ code: 'SS_BAD_INPUT', details: { field: 'pairVm.role' } }),
    );
    expect(() => pairRequest({ ...base, epoch: '-1' }, 'prod')).toThrow(
      expect.objectContaining({ details: { field: 'pairVm.epoch' } }),
    );
  });
});

describe('relayed commands on the host', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ss-host-cmd-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function fakeOps() {
    const calls: string[] = [];
    const ops = {
      setPaused: async (name: string, paused: boolean) => {
        calls.push(`pause ${name} ${paused}`);
        return undefined;
      },
      resync: async (name: string) => {
        calls.push(`resync ${name}`);
        throw new SecondsiteError('SS_NOT_PAIRED', `VM ${name} is not paired`);
      },
      points: async (name: string) => {
        calls.push(`points ${name}`);
        return [{ id: 'p1', time: 5, type: 'crash-consistent' as const, segment: 2 }];
      },
      status: async () => undefined,
    } as unknown as ReplicationOps;
    return { ops, calls };
  }
  const vms = { list: () => [] } as unknown as VmManager;

  it('applies an id once (outcome recorded, also an error), but lists points afresh', async () => {
    const { ops, calls } = fakeOps();
    const cmds = hostCommands(vms, await HostCommandLog.open(dir), { ops, vault: 'prod' });
    const pause = {
      commandId: 'c1',
      kind: 'pauseVm' as const,
      pauseVm: { name: 'vm1', paused: true },
    };
    expect(await cmds.run(pause)).toEqual({ commandId: 'c1', error: null });
    expect(await cmds.run(pause)).toEqual({ commandId: 'c1', error: null });
    const resync = { commandId: 'c2', kind: 'resyncVm' as const, resyncVm: { name: 'vm1' } };
    expect((await cmds.run(resync)).error).toMatchObject({ code: 'SS_NOT_PAIRED' });
    // After a restart: the same records.
    const again = hostCommands(vms, await HostCommandLog.open(dir), { ops, vault: 'prod' });
    expect((await again.run(resync)).error).toMatchObject({ code: 'SS_NOT_PAIRED' });
    expect(await again.apply(pause)).toBeNull();
    const list = { commandId: 'c3', kind: 'listPoints' as const, listPoints: { name: 'vm1' } };
    const listed = await again.run(list);
    expect(listed.points).toEqual([
      {
        id: 'p1',
        timeMs: '5',
        type: 'RECOVERY_POINT_TYPE_CRASH_CONSISTENT',
        segment: '2',
        freezeFailed: '',
      },
    ]);
    await again.run(list);
    expect(calls).toEqual(['pause vm1 true', 'resync vm1', 'points vm1', 'points vm1']);
  });

  it('set_revoked keeps the newest list in revoked.json (0600); older or malformed change nothing', async () => {
    const file = join(dir, 'revoked.json');
    const revoked = new RevocationList(file);
    const ops = { ...fakeOps().ops, revoked } as ReplicationOps;
    const cmds = hostCommands(vms, await HostCommandLog.open(dir), { ops, vault: 'prod' });
    const A = 'secondsite://prod/host/hv-a';
    const list = (id: string, version: string, identities: string[]) => ({
      commandId: id,
      kind: 'setRevoked' as const,
      setRevoked: { version, identities, fingerprints: [] },
    });
    expect((await cmds.run(list('r2', '2', [A]))).error).toBeNull();
    expect((await cmds.run(list('r1', '1', []))).error).toBeNull(); // late: ignored
    const bad = await cmds.run(list('rx', 'two', [A]));
    expect(bad.error).toMatchObject({ code: 'SS_BAD_INPUT' });
    expect(revoked.current()).toEqual({ version: 2, identities: [A], fingerprints: [] });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const reloaded = new RevocationList(file);
    expect(reloaded.isRevoked({ uri: A, fingerprint: 'x' })).toBe(true);
  });

  it('refuses replication commands on a link without replication', async () => {
    const cmds = hostCommands(vms, await HostCommandLog.open(dir));
    const r = await cmds.run({ commandId: 'c1', kind: 'resyncVm', resyncVm: { name: 'vm1' } });
    expect(r.error).toMatchObject({ code: 'SS_PROTOCOL' });
  });
});
