import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_FLAGS, NODE_FLAGS_WARNING as FLAGS_WARNING } from '../../../agent/host/node-flags.ts';
import {
  SECONDSITE_BIN,
  jsonOf,
  runCli,
  startDaemon,
  type Daemon,
} from '../../helpers/secondsite-cli.ts';
import { waitFor } from '../../helpers/wait-for.ts';

interface Vm {
  name: string;
  state: string;
  protected: boolean;
  journalState: string;
  guestConnected: boolean;
  guestAgentSocket: string;
  disks: Array<{ index: number; sizeBytes: number; nbd: string; file: string }>;
}
interface Point {
  id: string;
  type: string;
  freezeFailed?: string;
}

let dir: string;
let data: string;
let agent: Daemon | undefined;
const cutIds: string[] = [];

function startAgent(): Daemon {
  const d = startDaemon([
    'host',
    'start',
    '--standalone',
    '--data',
    data,
    '--name',
    'e2e-host',
    '--dev-copy-frequency',
    '2s',
  ]);
  agent = d;
  return d;
}

async function listVms(): Promise<Vm[]> {
  return jsonOf<Vm[]>(await runCli(['host', 'vm', 'list', '--data', data, '--json']));
}

async function waitForAgent(d: Daemon): Promise<Vm[]> {
  return waitFor(
    async () => {
      if (d.child.exitCode !== null) throw new Error(`agent exited: ${d.stderr()}`);
      const r = await runCli(['host', 'vm', 'list', '--data', data, '--json']);
      return r.code === 0 ? (JSON.parse(r.stdout) as Vm[]) : undefined;
    },
    { what: 'the host agent to serve its control socket' },
  );
}

function qemuIo(uri: string, ...cmds: string[]): { code: number | null; out: string } {
  const r = spawnSync('qemu-io', ['-f', 'raw', uri, ...cmds.flatMap((c) => ['-c', c])], {
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ss-e2e-sp-'));
  data = join(dir, 'data');
});

afterAll(async () => {
  if (agent && agent.child.exitCode === null) {
    agent.child.kill('SIGKILL');
    await agent.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('storage-path', () => {
  it('1. a standalone host agent starts and serves its control socket', async () => {
    const d = startAgent();
    expect(await waitForAgent(d)).toEqual([]);
    expect(statSync(join(data, 'control.sock')).mode & 0o777).toBe(0o600);
    // Started as the executable starts it (agent/host/node-flags.ts): no warning about flags.
    expect(d.stderr()).toContain('host agent starting');
    expect(d.stderr()).not.toContain(FLAGS_WARNING);
  });

  it('1b. an agent that node started without the flags of the executable says so', async () => {
    const other = join(dir, 'no-flags');
    const child = spawn(
      process.execPath,
      [SECONDSITE_BIN, 'host', 'start', '--standalone', '--data', other],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    try {
      await waitFor(() => err.includes('host agent starting') || undefined, {
        what: 'the flagless agent to start',
      });
      expect(err).toContain(FLAGS_WARNING);
      expect(err).toContain(NODE_FLAGS[0]);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });

  it('2. creates a VM with two sparse disks', async () => {
    const vm = jsonOf<Vm>(
      await runCli([
        'host',
        'vm',
        'create',
        '--data',
        data,
        'vm1',
        '--disk',
        '64MiB',
        '--disk',
        '32MiB',
        '--nic',
        'net1/web',
        '--json',
      ]),
    );
    expect(vm).toMatchObject({ name: 'vm1', state: 'stopped', protected: false });
    expect(vm.disks.map((d) => d.sizeBytes)).toEqual([64 * 2 ** 20, 32 * 2 ** 20]);
    for (const d of vm.disks) {
      const st = statSync(d.file);
      expect(st.mode & 0o777).toBe(0o600);
      expect(st.blocks * 512).toBeLessThan(st.size); // sparse
    }
  });

  it('3. negative: refuses bad input and conflicts, changing nothing', async () => {
    const tiny = await runCli([
      'host',
      'vm',
      'create',
      '--data',
      data,
      'vm2',
      '--disk',
      '1KiB',
      '--json',
    ]);
    expect(tiny.code).toBe(2);
    expect(jsonOf<{ error: { code: string } }>(tiny).error.code).toBe('SS_BAD_INPUT');
    const again = await runCli(['host', 'vm', 'create', '--data', data, 'vm1', '--disk', '64MiB']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('SS_CONFLICT');
    const cut = await runCli(['host', 'vm', 'cut', '--data', data, 'vm1']);
    expect(cut.code).toBe(1);
    expect(cut.stderr).toContain('SS_CONFLICT');
    expect((await listVms()).map((v) => v.name)).toEqual(['vm1']);
  });

  it('4. protects and starts the VM; both disks are NBD exports', async () => {
    const p = await runCli([
      'host',
      'vm',
      'protect',
      '--data',
      data,
      'vm1',
      '--copy-frequency',
      '30s',
      '--app-consistent-hours',
      '1',
    ]);
    expect(p.code, p.stderr).toBe(0);
    expect((await runCli(['host', 'vm', 'start', '--data', data, 'vm1'])).code).toBe(0);
    const [vm] = await listVms();
    expect(vm).toMatchObject({ state: 'running', protected: true, journalState: 'journaling' });
    expect(vm!.disks.map((d) => d.nbd)).toEqual([
      `nbd+unix:///vm1-0?socket=${join(data, 'run', 'vm1-0.sock')}`,
      `nbd+unix:///vm1-1?socket=${join(data, 'run', 'vm1-1.sock')}`,
    ]);
  });

  it('5. qemu-io writes and reads through both exports', async () => {
    const [vm] = await listVms();
    const [d0, d1] = vm!.disks;
    expect(qemuIo(d0!.nbd, 'write -P 0xab 0 1M', 'flush').code).toBe(0);
    expect(qemuIo(d1!.nbd, 'write -P 0xcd 1M 512k', 'flush').code).toBe(0);
    const r0 = qemuIo(d0!.nbd, 'read -P 0xab 0 1M');
    expect(r0.code).toBe(0);
    expect(r0.out).not.toMatch(/Pattern verification failed/);
    expect(qemuIo(d1!.nbd, 'read -P 0xcd 1M 512k').out).not.toMatch(/Pattern verification failed/);
  });

  it('6. cuts on demand; app-consistent without a guest says why it is not', async () => {
    const crash = jsonOf<Point>(
      await runCli(['host', 'vm', 'cut', '--data', data, 'vm1', '--json']),
    );
    expect(crash.type).toBe('crash-consistent');
    const noGuest = jsonOf<Point>(
      await runCli(['host', 'vm', 'cut', '--data', data, 'vm1', '--app-consistent', '--json']),
    );
    expect(noGuest).toMatchObject({
      type: 'crash-consistent',
      freezeFailed: 'no guest agent is connected',
    });
    cutIds.push(crash.id, noGuest.id);
  });

  it('7. the workload guest is frozen for an app-consistent point and verifies its data', async () => {
    const [vm] = await listVms();
    const workload = startDaemon([
      'workload',
      ...vm!.disks.flatMap((d) => ['--nbd', d.nbd]),
      '--guest-agent',
      vm!.guestAgentSocket,
      '--vm',
      'vm1',
      '--duration',
      '4s',
      '--rate',
      '5',
      '--seed',
      '42',
      '--verify',
      '--json',
    ]);
    await waitFor(async () => (await listVms())[0]?.guestConnected, {
      what: 'the guest agent to connect',
    });
    const app = jsonOf<Point>(
      await runCli(['host', 'vm', 'cut', '--data', data, 'vm1', '--app-consistent', '--json']),
    );
    expect(app.type).toBe('app-consistent');
    expect(app.freezeFailed).toBeUndefined();
    cutIds.push(app.id);
    expect(await workload.exited, workload.stderr()).toBe(0);
    const summary = JSON.parse(workload.stdout()) as {
      seed: number;
      freezes: number;
      ops: number;
      verified: { blocks: number; mismatches: string[] };
    };
    expect(summary.seed).toBe(42);
    expect(summary.freezes).toBeGreaterThanOrEqual(1);
    expect(summary.ops).toBeGreaterThan(0);
    expect(summary.verified.blocks).toBeGreaterThan(0);
    expect(summary.verified.mismatches).toEqual([]);
  });

  it('8. scheduled cuts appear, and every point cut above is listed', async () => {
    const before = jsonOf<Point[]>(
      await runCli(['host', 'vm', 'points', '--data', data, 'vm1', '--json']),
    );
    await waitFor(
      async () =>
        jsonOf<Point[]>(await runCli(['host', 'vm', 'points', '--data', data, 'vm1', '--json']))
          .length > before.length,
      { what: 'a scheduled cut' },
    );
    const ids = jsonOf<Point[]>(
      await runCli(['host', 'vm', 'points', '--data', data, 'vm1', '--json']),
    ).map((p) => p.id);
    expect(ids).toEqual(expect.arrayContaining(cutIds));
  });

  it('9. negative: a second agent on the same data folder is refused', async () => {
    const second = await runCli(['host', 'start', '--standalone', '--data', data]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('SS_DATA_FOLDER_LOCKED');
    expect((await listVms())[0]?.state).toBe('running');
  });

  it('10. survives a restart with its VM, data and recovery points', async () => {
    const [vm] = await listVms();
    const copies = vm!.disks.map((d) => join(dir, `copy-${d.index}.raw`));
    vm!.disks.forEach((d, i) => {
      const r = spawnSync('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', d.nbd, copies[i]!]);
      expect(r.status, String(r.stderr)).toBe(0);
    });
    const points = jsonOf<Point[]>(
      await runCli(['host', 'vm', 'points', '--data', data, 'vm1', '--json']),
    );

    agent!.child.kill('SIGTERM');
    expect(await agent!.exited).toBe(0);
    expect(existsSync(join(data, 'control.sock'))).toBe(false);
    expect(existsSync(join(data, 'run', 'vm1-0.sock'))).toBe(false);

    const [back] = await waitForAgent(startAgent());
    expect(back).toMatchObject({
      name: 'vm1',
      state: 'running',
      protected: true,
      journalState: 'journaling',
    });
    const after = jsonOf<Point[]>(
      await runCli(['host', 'vm', 'points', '--data', data, 'vm1', '--json']),
    );
    expect(after.slice(0, points.length)).toEqual(points);
    back!.disks.forEach((d, i) => {
      const r = spawnSync('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', copies[i]!, d.nbd]);
      expect(r.status, String(r.stdout) + String(r.stderr)).toBe(0);
    });
  });
  it('11. after kill -9 mid-workload it restarts, replays, and no block is torn', async () => {
    const [vm] = await listVms();
    const nbd = vm!.disks.flatMap((d) => ['--nbd', d.nbd]);
    const workload = startDaemon([
      ...['workload', ...nbd],
      '--duration',
      '30s',
      '--rate',
      '5',
      '--seed',
      '42',
    ]);
    await waitFor(() => /\d+ writes/.test(workload.stderr()), { what: 'the workload writing' });
    agent!.child.kill('SIGKILL');
    await agent!.exited;
    await workload.exited; // it fails: its NBD server vanished

    const [back] = await waitForAgent(startAgent());
    expect(back).toMatchObject({ state: 'running', protected: true, journalState: 'journaling' });
    const check = await runCli(['workload', ...nbd, '--check', '--seed', '42', '--json']);
    expect(check.code, check.stderr).toBe(0);
    const report = JSON.parse(check.stdout) as { pattern: number; bad: number };
    expect(report.bad).toBe(0);
    expect(report.pattern).toBeGreaterThan(0);
  });
});
