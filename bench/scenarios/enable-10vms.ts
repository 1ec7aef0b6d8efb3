/**
 * enable-10vms (issue 5): the control plane's cost, with the whole product running as real
 * processes on loopback, built by the two-site demo's own set-up (cli/demo: sites.ts,
 * setup.ts via bench/processes.ts startBenchSites): a coordinator, New York's and Chicago's
 * providers, one host each (ny-hv1 on 127.0.1.1, chi-hv1 on 127.0.2.1), the "gold" policy
 * (30 s copies), its association and maps, all through the coordinator's API client (what the
 * CLI sends, without the CLI's start-up time).
 *
 * Two figures:
 *
 * 1. Time from `replication enable` of 10 small VMs (one job; 256 MiB sparse disks with
 *    ENABLE_WRITE_MB of random data each, written through their NBD exports beforehand) to all
 *    10 items `protected` (polled every 100 ms). Baselines, same run:
 *    - `cp --sparse=always` of the same 10 disk files, then `sync`: the data the 10 initial
 *      copies move, copied by the plainest tool, on one disk (no network, no journal, no
 *      control plane). It bounds from below what any product could do; the ratio says how
 *      much the control plane (placement, pairing on two hosts, finalize) and the transport
 *      add around the bytes.
 *    - one VM enabled alone (measured just before, on the same installation) × 10: what
 *      enabling them one at a time would cost; ratio > 1 means the batch overlaps its VMs.
 * 2. The coordinator's CPU seconds while CPU_VMS protected VMs (the 11 above and more, with
 *    empty 256 MiB disks) cycle every 30 s for CPU_MINUTES minutes, per protected VM-hour.
 *    Measured from /proc/<pid>/stat (utime + stime, clock ticks) of the coordinator process,
 *    sampled at the window's start and end: the process's own CPU, its start-up not included.
 *    Nothing queries the coordinator during the window. Baseline: an idle coordinator (a second
 *    `coordinator start` with one vault, no providers, no VMs) started at the beginning and
 *    sampled over the same window, expressed per the same VM-hours: what the coordinator costs
 *    with nothing to do. ratio = idle ÷ ours; 1 would mean 50 VMs cost nothing above idle.
 *
 * Default run ≈ 7.5 min (set-up and the timed enables ≈ 1 min, enabling the other 39 VMs
 * ≈ 1.5 min, the 5 min window). Environment:
 * - ENABLE_VMS (default 10): VMs of the timed batch enable;
 * - ENABLE_WRITE_MB (default 32): MiB written into each of them (and the solo VM) first;
 * - CPU_VMS (default 50): protected VMs during the CPU window (at least ENABLE_VMS + 1);
 * - CPU_MINUTES (default 5; 0 skips the CPU figure);
 * - SECONDSITE_TIME_SCALE (default 1): the coordinator's time scale, passed to it as the demo
 *   does: the policy's 30 s copies become 30 × scale s (e.g. 0.2 → 6 s cycles), so a shorter
 *   window still sees several cycles. The row's notes give the cycle used.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { VAULT, type DemoVm } from '../../cli/demo/layout.ts';
import { logTail, printedJson, startProcess, stopProcess } from '../../cli/demo/processes.ts';
import { enableReplication } from '../../cli/demo/setup.ts';
import { result, type BenchResult, type Scenario } from '../harness.ts';
import {
  connectAdmin,
  hostDiskFile,
  nbdUri,
  processCpuSeconds,
  startBenchSites,
  timed,
  waitItemsState,
  writeSpread,
} from '../processes.ts';

const MiB = 2 ** 20;
const DISK = '256MiB';

function numberEnv(name: string, fallback: number, min = 1): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name}="${v}" must be a number ≥ ${min}`);
  return n;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const vmName = (i: number): string => `VM${String(i).padStart(2, '0')}`;
const secs = (ms: number): number => ms / 1000;

export const enable10Vms: Scenario = {
  name: 'enable-10vms',
  description:
    'replication enable of 10 small VMs to all protected, and the coordinator CPU while 50 protected VMs cycle every 30 s (real processes on loopback)',
  async run({ dir, say }) {
    const enableN = Math.round(numberEnv('ENABLE_VMS', 10));
    const writeMb = numberEnv('ENABLE_WRITE_MB', 32, 0);
    const cpuMinutes = numberEnv('CPU_MINUTES', 5, 0);
    const cpuN = Math.max(Math.round(numberEnv('CPU_VMS', 50)), enableN + 1);
    const timeScale = numberEnv('SECONDSITE_TIME_SCALE', 1, 0.01);
    const cycleS = 30 * timeScale;
    const declared = cpuMinutes > 0 ? cpuN : enableN + 1;
    const all = Array.from({ length: declared }, (_, i) => vmName(i + 1));
    const batch = all.slice(0, enableN);
    const solo = all[enableN]!;
    const rest = all.slice(enableN + 1);
    const vms: DemoVm[] = all.map((name) => ({ name, disk: DISK }));
    const halt = new AbortController();

    // The idle coordinator first, so its start-up is long over when the window opens.
    const idle = startProcess(
      'idle coordinator',
      [
        'coordinator',
        'start',
        '--data',
        join(dir, 'idle-coordinator'),
        '--listen',
        '127.0.0.1:0',
        '--json',
      ],
      { log: join(dir, 'idle-coordinator.log'), env: { SECONDSITE_TIME_SCALE: String(timeScale) } },
    );
    let idleApi: ReturnType<typeof connectAdmin> | undefined;
    let sites: Awaited<ReturnType<typeof startBenchSites>> | undefined;
    try {
      const { adminFile } = await printedJson<{ adminFile: string }>(idle, halt.signal);
      idleApi = connectAdmin(adminFile);
      await idleApi.api.createVault('idle');

      say(`starting the two sites with ${declared} VMs of ${DISK} on ny-hv1`);
      sites = await startBenchSites(join(dir, 'sites'), {
        vms,
        timeScale,
        say,
        signal: halt.signal,
      });
      const { api, folder } = sites;
      const logs = folder.path('logs');
      const quiet = (): void => undefined;

      const withData = [...batch, solo];
      await Promise.all(
        withData.map(async (vm) =>
          writeSpread(await nbdUri(api, `VMM-NewYork/${vm}`), writeMb * MiB),
        ),
      );
      say(`wrote ${writeMb} MiB into each of ${withData.length} VMs`);

      // Baseline: the same 10 disks copied with cp (sparse) and synced.
      const copies = join(dir, 'cp');
      const disks = batch.map((vm) => hostDiskFile(folder, 'ny-hv1', vm));
      await timed('sync', []);
      const cpS = await timed('sh', [
        '-c',
        `mkdir -p "${copies}" && for f in "$@"; do cp --sparse=always "$f" "${copies}/$(basename "$(dirname "$f")").raw" || exit 1; done && sync "${copies}"/*`,
        'sh',
        ...disks,
      ]);
      rmSync(copies, { recursive: true, force: true });
      say(`baseline: cp --sparse=always + sync of the ${enableN} disks: ${cpS.toFixed(2)} s`);

      // One VM alone, then the batch.
      let t0 = performance.now();
      await enableReplication(api, halt.signal, logs, { vms: [solo], say: quiet });
      await waitItemsState(api, [solo], {
        state: 'protected',
        t0,
        signal: halt.signal,
        timeoutMs: 600_000,
      });
      const soloS = secs(performance.now() - t0);
      say(`${solo} alone: enable → protected in ${soloS.toFixed(2)} s`);

      t0 = performance.now();
      const job = await enableReplication(api, halt.signal, logs, {
        vms: batch,
        say: quiet,
        timeoutMs: 600_000,
      });
      const jobS = secs(performance.now() - t0);
      const reached = await waitItemsState(api, batch, {
        state: 'protected',
        t0,
        signal: halt.signal,
        timeoutMs: 900_000,
      });
      const batchS = secs(performance.now() - t0);
      const each = [...reached.values()].sort((a, b) => a - b);
      say(
        `${enableN} VMs: enable job ${job.id} done in ${jobS.toFixed(2)} s; all protected in ${batchS.toFixed(2)} s (first ${secs(each[0]!).toFixed(2)} s)`,
      );
      const rows: BenchResult[] = [
        result(
          'enable-10vms',
          's',
          'lower-is-better',
          batchS,
          cpS,
          `cp --sparse=always + sync of the ${enableN} disks`,
          `${enableN} VMs × ${DISK} sparse disk with ${writeMb} MiB of random data each, one job; enable job done at ${jobS.toFixed(2)} s, first item protected at ${secs(each[0]!).toFixed(2)} s, last at ${batchS.toFixed(2)} s; ${cycleS} s cycles`,
        ),
        result(
          'enable-10vms',
          's',
          'lower-is-better',
          batchS,
          soloS * enableN,
          `1 VM enabled alone (${soloS.toFixed(2)} s) × ${enableN}`,
        ),
      ];
      if (cpuMinutes === 0) return rows;

      if (rest.length > 0) {
        t0 = performance.now();
        await enableReplication(api, halt.signal, logs, {
          vms: rest,
          say: quiet,
          timeoutMs: 600_000,
        });
        await waitItemsState(api, rest, {
          state: 'protected',
          t0,
          signal: halt.signal,
          timeoutMs: 900_000,
        });
        say(`${rest.length} more VMs protected in ${secs(performance.now() - t0).toFixed(1)} s`);
      }
      // Let the last VMs' first cycles pass: each VM then cycles on its own schedule.
      await sleep(Math.min(cycleS, 10) * 1000);
      const pointsBefore = await countPoints(api, all);
      const pid = sites.coordinator.child.pid!;
      const idlePid = idle.child.pid!;
      const windowMs = cpuMinutes * 60_000;
      say(`CPU window: ${cpuMinutes} min, ${all.length} protected VMs, ${cycleS} s cycles`);
      const start = { ours: processCpuSeconds(pid), idle: processCpuSeconds(idlePid) };
      const w0 = performance.now();
      await sleep(windowMs);
      const end = { ours: processCpuSeconds(pid), idle: processCpuSeconds(idlePid) };
      const hours = secs(performance.now() - w0) / 3600;
      const cpu = { ours: end.ours - start.ours, idle: end.idle - start.idle };
      const items = await api.listItems(VAULT);
      const pointsAfter = await countPoints(api, all);
      const notProtected = items.filter((i) => all.includes(i.vm) && i.state !== 'protected');
      const unhealthy = items.filter((i) => all.includes(i.vm) && i.health !== 'normal');
      const newPoints = pointsAfter - pointsBefore;
      const vmHours = all.length * hours;
      say(
        `coordinator ${cpu.ours.toFixed(2)} CPU s, idle coordinator ${cpu.idle.toFixed(2)} CPU s over ${(hours * 60).toFixed(2)} min; ${newPoints} new recovery points (retention may drop old ones); ${notProtected.length} not protected, ${unhealthy.length} not normal`,
      );
      rows.push(
        result(
          'enable-10vms cpu',
          'CPU s/VM-h',
          'lower-is-better',
          cpu.ours / vmHours,
          cpu.idle / vmHours,
          'idle coordinator, same window',
          `coordinator CPU (utime+stime from /proc/<pid>/stat) over a ${(hours * 60).toFixed(2)} min window: ${cpu.ours.toFixed(2)} s with ${all.length} protected VMs on ${cycleS} s cycles vs ${cpu.idle.toFixed(2)} s idle (= ${((100 * cpu.ours) / (hours * 3600)).toFixed(2)}% vs ${((100 * cpu.idle) / (hours * 3600)).toFixed(2)}% of a core); recovery points listed grew by ${newPoints} (≈ ${Math.round(all.length * ((hours * 3600) / cycleS))} cycles expected); at the end ${all.length - notProtected.length}/${all.length} protected, ${all.length - unhealthy.length} normal`,
        ),
      );
      return rows;
    } catch (e) {
      for (const p of sites?.processes ?? []) say(`${p.name} log tail:\n${logTail(p, 8)}`);
      throw e;
    } finally {
      halt.abort();
      const problems = [...((await sites?.stop()) ?? [])];
      const idleProblem = await stopProcess(idle);
      if (idleProblem !== undefined) problems.push(idleProblem);
      await idleApi?.close().catch(() => undefined);
      for (const p of problems) say(`stop: ${p}`);
    }
  },
};

/** The recovery points the coordinator lists for `vms`, summed. */
async function countPoints(
  api: Awaited<ReturnType<typeof startBenchSites>>['api'],
  vms: readonly string[],
): Promise<number> {
  let n = 0;
  for (const vm of vms) n += (await api.listRecoveryPoints(VAULT, vm)).length;
  return n;
}
