/** See README.md in this folder for what this scenario proves and its steps. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PointJson, VmJson } from '../../../agent/host/main.ts';
import { createTestCa, type TestCa } from '../../helpers/test-ca.ts';
import {
  VAULT,
  hostVm,
  replicationPort,
  startHostProcess,
  writeHostTls,
  type HostProcess,
} from '../../helpers/replication-lab.ts';
import { waitFor } from '../../helpers/wait-for.ts';

const A_ADDR = '127.0.1.1';
const B_ADDR = '127.0.2.1';

let dir: string;
let ca: TestCa;
let port: number;
let a: HostProcess;
let b: HostProcess;
const hosts: HostProcess[] = [];
const points: PointJson[] = [];

function run(cmd: string, ...args: string[]): { code: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

function qemuIo(uri: string, ...cmds: string[]): void {
  const r = run('qemu-io', '-f', 'raw', uri, ...cmds.flatMap((c) => ['-c', c]), '-c', 'flush');
  expect(r.code, r.out).toBe(0);
}

async function vmOf(h: HostProcess, name: string): Promise<VmJson> {
  const vms = await hostVm<VmJson[]>(h.data, 'list');
  const vm = vms.find((v) => v.name === name);
  if (!vm) throw new Error(`no ${name} on ${h.name}`);
  return vm;
}

/** Cuts on hv-a, waits for the ack, and checks hv-b's copy at the point against hv-a's disk. */
async function cycleMatches(n: number): Promise<void> {
  const point = await hostVm<PointJson>(a.data, 'cut', 'vm1');
  points.push(point);
  await waitFor(
    async () => ((await vmOf(a, 'vm1')).replication?.lastAckedSeq ?? 0) >= point.segment,
    { what: `hv-b to acknowledge segment ${point.segment}` },
  );
  const out = join(dir, `vm1-${n}.raw`);
  await hostVm(b.data, 'read', 'vm1', '--disk', '0', '--point', point.id, '--out', out);
  const uri = (await vmOf(a, 'vm1')).disks[0]!.nbd;
  const cmp = run('qemu-img', 'compare', '-f', 'raw', '-F', 'raw', out, uri);
  expect(cmp.code, cmp.out).toBe(0);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ss-e2e-repl-'));
  ca = createTestCa();
  port = await replicationPort([A_ADDR, B_ADDR]);
  console.log(`replication e2e: port ${port}`);
});

afterAll(async () => {
  for (const h of hosts) await h.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

describe('replication between two host processes', () => {
  it('1. starts two agents with certificates of one CA', async () => {
    writeHostTls(ca, 'hv-a', join(dir, 'a', 'identity'));
    writeHostTls(ca, 'hv-b', join(dir, 'b', 'identity'));
    a = await startHostProcess({ name: 'hv-a', data: join(dir, 'a'), address: A_ADDR, port });
    hosts.push(a);
    b = await startHostProcess({ name: 'hv-b', data: join(dir, 'b'), address: B_ADDR, port });
    hosts.push(b);
  });

  it('2. pairs vm1: replica on hv-b, primary on hv-a', async () => {
    const common = ['--vault', VAULT];
    const rep = await hostVm<VmJson>(
      b.data,
      'pair',
      'vm1',
      '--role',
      'replica',
      '--peer-host',
      'hv-a',
      '--peer-address',
      `${A_ADDR}:${port}`,
      '--disk',
      '16MiB',
      ...common,
    );
    expect(rep.replication).toMatchObject({ role: 'replica', peer: 'secondsite://v1/host/hv-a' });
    await hostVm(a.data, 'create', 'vm1', '--disk', '16MiB');
    const pri = await hostVm<VmJson>(
      a.data,
      'pair',
      'vm1',
      '--role',
      'primary',
      '--peer-host',
      'hv-b',
      '--peer-address',
      `${B_ADDR}:${port}`,
      ...common,
    );
    expect(pri.replication).toMatchObject({ role: 'primary', baseline: 'zero' });
    await hostVm(a.data, 'protect', 'vm1');
    await hostVm(a.data, 'start', 'vm1');
  });

  it('3. cycle 1: what qemu-io wrote is what hv-b reads at the point', async () => {
    const uri = (await vmOf(a, 'vm1')).disks[0]!.nbd;
    qemuIo(uri, 'write -P 0xab 0 1M', 'write -P 0x5c 5M 64k', 'write -P 0x11 15M 1M');
    await cycleMatches(1);
  });

  it('4. cycle 2: overwrites, zeroes and discards; the older point still reads', async () => {
    const uri = (await vmOf(a, 'vm1')).disks[0]!.nbd;
    const before = join(dir, 'vm1-1.raw');
    qemuIo(uri, 'write -P 0xcd 512k 1M', 'write -z 15M 512k', 'discard 5M 64k');
    await cycleMatches(2);
    const again = join(dir, 'vm1-1-again.raw');
    await hostVm(b.data, 'read', 'vm1', '--disk', '0', '--point', points[0]!.id, '--out', again);
    expect(run('cmp', before, again).code).toBe(0);
  });

  it('5. refuses another CA and an unpaired peer, and shows why', async () => {
    const other = createTestCa({ commonName: 'another CA' });
    const cData = join(dir, 'c');
    writeHostTls(other, 'hv-a', join(cData, 'identity'));
    const c = await startHostProcess({ name: 'hv-a', data: cData });
    hosts.push(c);
    await hostVm(c.data, 'create', 'vm1', '--disk', '16MiB');
    await hostVm(
      c.data,
      'pair',
      'vm1',
      '--role',
      'primary',
      '--peer-host',
      'hv-b',
      '--peer-address',
      `${B_ADDR}:${port}`,
      '--vault',
      VAULT,
    );
    await hostVm(c.data, 'protect', 'vm1');
    await hostVm(c.data, 'start', 'vm1');
    qemuIo((await vmOf(c, 'vm1')).disks[0]!.nbd, 'write -P 0xee 0 1M');
    await hostVm(c.data, 'cut', 'vm1');
    const refused = await waitFor(
      async () => {
        const r = (await vmOf(c, 'vm1')).replication;
        return r?.lastError.startsWith('SS_UNAVAILABLE') ? r : undefined;
      },
      { what: 'the other-CA sender to report its refusal' },
    );
    expect(['backoff', 'connecting']).toContain(refused.state);

    await hostVm(a.data, 'create', 'vm9', '--disk', '16MiB');
    await hostVm(
      a.data,
      'pair',
      'vm9',
      '--role',
      'primary',
      '--peer-host',
      'hv-b',
      '--peer-address',
      `${B_ADDR}:${port}`,
      '--vault',
      VAULT,
    );
    await hostVm(a.data, 'protect', 'vm9');
    await hostVm(a.data, 'start', 'vm9');
    const stopped = await waitFor(
      async () => {
        const r = (await vmOf(a, 'vm9')).replication;
        return r?.state === 'stopped' ? r : undefined;
      },
      { what: 'the unpaired sender to stop' },
    );
    expect(stopped.lastError).toMatch(/^SS_NOT_PAIRED: /);

    const kept = await hostVm<PointJson[]>(b.data, 'points', 'vm1');
    expect(kept.map((p) => p.id)).toEqual(points.map((p) => p.id));
  });
});
