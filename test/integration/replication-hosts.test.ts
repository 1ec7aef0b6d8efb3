/**
 * Two host agents in one process (two data folders, a test CA, replication ports on
 * 127.0.0.1:0), driven through their control sockets like an admin would:
 *
 * 1. hv-b pairs VM "vm1" as replica (creating its disks), hv-a creates vm1, pairs it as
 *    primary (disks still zero: baseline 'zero'), protects and starts it.
 * 2. Cycles: random writes through hv-a's NBD export, kept in a shadow copy too; a cut; wait
 *    for hv-a's sender to report the cycle acknowledged; hv-b's replica read at that point
 *    (`host vm read`) equals the shadow copy at the cut, bit for bit.
 * 3. Every point hv-b retains reads exactly as the shadow history at its cut.
 * 4. Initial copy: a VM written before pairing (baseline 'initial-copy-required') is copied
 *    by its sender once protected while the guest keeps writing; progress reaches the disk
 *    size, the baseline becomes 'copied', and after a cut the replica's latest point equals
 *    the shadow copy bit for bit.
 * Negative: a replica VM cannot be started.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  vmAction,
  vmCreate,
  vmCut,
  vmList,
  vmPair,
  vmPoints,
  vmProtect,
  vmRead,
} from '../../agent/host/main.ts';
import { NbdClient } from '../../common/nbd/client.ts';
import { HostLocalClient } from '../../agent/host/control/control-client.ts';
import { createTestCa } from '../helpers/test-ca.ts';
import { startInProcessHost, VAULT, type InProcessHost } from '../helpers/replication-lab.ts';
import { seededRandom, testSeed } from '../helpers/seeded-random.ts';
import { waitFor } from '../helpers/wait-for.ts';

const SIZE = 8 * 1024 * 1024;
let dir: string;
let a: InProcessHost;
let b: InProcessHost;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ss-repl-'));
  const ca = createTestCa();
  a = await startInProcessHost(ca, 'hv-a', join(dir, 'a'));
  b = await startInProcessHost(ca, 'hv-b', join(dir, 'b'));
});

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function replicationOf(data: string, vm: string) {
  const found = (await vmList({ data })).find((v) => v.name === vm);
  return found?.replication;
}

async function pointBytes(vm: string, pointId: string, n: number): Promise<Buffer> {
  const out = join(dir, `read-${n}.raw`);
  await vmRead({ data: b.data, name: vm, disk: '0', point: pointId, out });
  return readFileSync(out);
}

describe('replication between two host agents in one process', () => {
  it('keeps the replica bit-exact at every cut and every retained point', async () => {
    const r = seededRandom(testSeed('replication-hosts'));
    const peer = (h: InProcessHost) => ({ peerAddress: `127.0.0.1:${h.port}`, vault: VAULT });
    await vmPair({
      data: b.data,
      name: 'vm1',
      role: 'replica',
      peerHost: 'hv-a',
      ...peer(a),
      disk: ['8MiB'],
    });
    await vmCreate({ data: a.data, name: 'vm1', disk: ['8MiB'], nic: [] });
    const paired = await vmPair({
      data: a.data,
      name: 'vm1',
      role: 'primary',
      peerHost: 'hv-b',
      ...peer(b),
    });
    expect(paired.replication).toMatchObject({ role: 'primary', baseline: 'zero' });
    // The control socket is an edge an administrator uses: policy frequencies only (a
    // coordinator's pairing may carry a scaled interval, the manager allows that).
    await expect(
      HostLocalClient.connect(a.data).protectVm({
        name: 'vm1',
        copyFrequencySeconds: 60,
        appConsistentHours: 0,
      }),
    ).rejects.toMatchObject({ code: 'SS_BAD_INPUT', details: { field: 'copyFrequencySeconds' } });
    await vmProtect({ data: a.data, name: 'vm1' });
    const vm = await vmAction('start', { data: a.data, name: 'vm1' });
    const nbd = await NbdClient.connect(vm.disks[0]!.nbd);
    const shadow = Buffer.alloc(SIZE);
    const history = new Map<string, Buffer>();
    try {
      for (let cycle = 0; cycle < 6; cycle++) {
        for (let k = 0; k < 20; k++) {
          const len = r.range(1, 32) * 512;
          const off = r.int((SIZE - len) / 512) * 512;
          const data = r.next() < 0.15 ? Buffer.alloc(len) : r.fill(Buffer.alloc(len));
          await nbd.write(off, data);
          data.copy(shadow, off);
        }
        await nbd.flush();
        const point = await vmCut({ data: a.data, name: 'vm1' });
        history.set(point.id, Buffer.from(shadow));
        await waitFor(
          async () => ((await replicationOf(a.data, 'vm1'))?.lastAckedSeq ?? 0) >= point.segment,
          { what: `segment ${point.segment} acknowledged` },
        );
        expect((await pointBytes('vm1', point.id, cycle)).equals(shadow)).toBe(true);
      }
    } finally {
      await nbd.close();
    }
    const status = await replicationOf(a.data, 'vm1');
    expect(status).toMatchObject({ state: 'idle', lastError: '' });
    expect((await vmList({ data: a.data }))[0]!.unshippedBytes).toBeLessThan(SIZE);
    const retained = await vmPoints({ data: b.data, name: 'vm1' });
    expect(retained.length).toBe(history.size);
    for (const [i, p] of retained.entries()) {
      expect((await pointBytes('vm1', p.id, 100 + i)).equals(history.get(p.id)!)).toBe(true);
    }
    expect((await replicationOf(b.data, 'vm1'))?.lastAckedSeq).toBe(retained.at(-1)!.segment);
  });

  it('copies a VM that held data before pairing while it keeps writing, then ships deltas', async () => {
    const r = seededRandom(testSeed('replication-hosts-initial-copy'));
    const size = 32 * 1024 * 1024;
    const peer = (h: InProcessHost) => ({ peerAddress: `127.0.0.1:${h.port}`, vault: VAULT });
    await vmPair({
      data: b.data,
      name: 'vm2',
      role: 'replica',
      peerHost: 'hv-a',
      ...peer(a),
      disk: ['32MiB'],
    });
    await vmCreate({ data: a.data, name: 'vm2', disk: ['32MiB'], nic: [] });
    await vmAction('start', { data: a.data, name: 'vm2' });
    const shadow = Buffer.alloc(size);
    // Blocks of up to `max` 4 KiB pages; small during the copy: the journal's cap is half the
    // disk, and nothing is shipped (so nothing freed) before the copy ends.
    const write = async (nbd: NbdClient, n: number, max = 128): Promise<void> => {
      for (let k = 0; k < n; k++) {
        const len = r.range(1, max) * 4096;
        const off = r.int((size - len) / 4096) * 4096;
        const data = r.next() < 0.15 ? Buffer.alloc(len) : r.fill(Buffer.alloc(len));
        await nbd.write(off, data);
        data.copy(shadow, off);
      }
      await nbd.flush();
    };
    const nbdPath = async () =>
      (await vmList({ data: a.data })).find((v) => v.name === 'vm2')!.disks[0]!.nbd;
    let nbd = await NbdClient.connect(await nbdPath());
    await write(nbd, 150);
    await nbd.close();
    const p = await vmPair({
      data: a.data,
      name: 'vm2',
      role: 'primary',
      peerHost: 'hv-b',
      ...peer(b),
    });
    expect(p.replication?.baseline).toBe('initial-copy-required');
    await vmProtect({ data: a.data, name: 'vm2' });
    nbd = await NbdClient.connect(await nbdPath());
    try {
      // The guest keeps writing until the copy is done (and the sender saw it through).
      let rounds = 0;
      let writesDuringCopy = 0;
      await waitFor(
        async () => {
          if (rounds < 400) await write(nbd, 4, 4);
          rounds++;
          const st = (await vmList({ data: a.data })).find((v) => v.name === 'vm2')!.replication;
          if (st?.state === 'initial-copy') writesDuringCopy++;
          return st?.baseline === 'copied' ? st : undefined;
        },
        { what: 'initial copy of vm2 done' },
      );
      expect(rounds).toBeGreaterThan(0);
      // Timing-dependent (a fast copy may finish between two polls), so reported, not asserted.
      console.log(`replication-hosts: ${writesDuringCopy} write rounds seen during the copy`);
      const st = await replicationOf(a.data, 'vm2');
      expect(st?.copy).toEqual({ bytesDone: size, bytesTotal: size });
      await write(nbd, 40, 16);
      const point = await vmCut({ data: a.data, name: 'vm2' });
      await waitFor(
        async () => ((await replicationOf(a.data, 'vm2'))?.lastAckedSeq ?? 0) >= point.segment,
        { what: `vm2 segment ${point.segment} acknowledged` },
      );
      const points = await vmPoints({ data: b.data, name: 'vm2' });
      expect(points.at(-1)?.id).toBe(point.id);
      expect((await pointBytes('vm2', point.id, 200)).equals(shadow)).toBe(true);
      expect(await replicationOf(a.data, 'vm2')).toMatchObject({ lastError: '' });
    } finally {
      await nbd.close();
    }
  });

  it('refuses to start a replica VM', async () => {
    await expect(vmAction('start', { data: b.data, name: 'vm1' })).rejects.toMatchObject({
      code: 'SS_CONFLICT',
    });
  });
});
