/**
 * `secondsite demo --single-host`: the storage path on one machine, with real processes (the
 * first demo, kept beside the two-site one).
 *
 *   1. make a temp data folder and start `secondsite host start --standalone` in it, with a
 *      development copy frequency of 5 s so crash-consistent points appear while you watch;
 *   2. create VM "demo-vm" with two sparse disks, protect it, start it;
 *   3. print the NBD URIs and qemu-io / nbdinfo commands to try from another terminal;
 *   4. run the workload (the stand-in guest) on both disks with the guest agent, and cut an
 *      app-consistent point every 10 s (the guest is frozen for it);
 *   5. on Ctrl-C or after --duration: stop the workload and verify what it wrote, print the
 *      recovery points, stop the agent, and remove the folder unless --keep.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SecondsiteError } from '../../common/errors/errors.ts';
import {
  vmAction,
  vmCreate,
  vmCut,
  vmList,
  vmPoints,
  vmProtect,
  type PointJson,
} from '../../agent/host/main.ts';
import {
  compileWorkloadOptions,
  runWorkload,
  type WorkloadSummary,
} from '../../agent/guest/main.ts';
import { pointLine, pointsTable, vmsTable } from '../output/host-vm.ts';
import type { DemoOptions } from './options.ts';
import { BIN, isRunning, startProcess, stopProcess, type DemoProcess } from './processes.ts';

const VM = 'demo-vm';
const APP_CONSISTENT_EVERY_MS = 10_000;

const say = (text: string): boolean => process.stdout.write(text);

/**
 * The standalone host agent, started as the demo starts every process (processes.ts): in its
 * own process group, so a terminal's Ctrl-C reaches only the demo, which then stops the
 * workload first and the agent last (exports closed, journals flushed).
 */
function startAgent(data: string): DemoProcess {
  const flags = ['--standalone', '--data', data, '--name', 'demo-host', '--journal-cap', '2GiB'];
  return startProcess('host agent', ['host', 'start', ...flags, '--dev-copy-frequency', '5s'], {
    log: join(data, 'host-agent.log'),
  });
}

async function waitForAgent(data: string, agent: DemoProcess): Promise<void> {
  for (let i = 0; ; i++) {
    if (!isRunning(agent))
      throw new Error(`the host agent exited (${agent.child.exitCode}); see ${agent.log}`);
    try {
      await vmList({ data });
      return;
    } catch (e) {
      if (i > 300) throw e;
      await new Promise((r) => setTimeout(r, 100)); // polling a process we just started
    }
  }
}

function printHowToLook(data: string, uris: string[]): void {
  say("\nThe VM's disks are NBD exports. From another terminal, try:\n");
  for (const uri of uris) say(`  nbdinfo '${uri}'\n`);
  say(`  qemu-io -f raw -r '${uris[0]}' -c 'read -v 0 64'\n`);
  say(`  ${BIN} host vm list --data ${data}\n`);
  say(`  ${BIN} host vm cut --data ${data} ${VM} --app-consistent\n`);
  say(`  ${BIN} host vm points --data ${data} ${VM}\n\n`);
}

/** Prints recovery points not printed yet; returns how many are known. */
async function printNewPoints(data: string, seen: Set<string>): Promise<PointJson[]> {
  const points = await vmPoints({ data, name: VM });
  for (const p of points.filter((p) => !seen.has(p.id))) {
    seen.add(p.id);
    say(`  ${pointLine(p)}`);
  }
  return points;
}

async function runDemo(flags: DemoOptions, stop: AbortController): Promise<WorkloadSummary> {
  const data = mkdtempSync(join(tmpdir(), 'ss-demo-'));
  const agent = startAgent(data);
  say(`secondsite demo: data folder ${data} (host agent log: ${data}/host-agent.log)\n`);
  try {
    await waitForAgent(data, agent);
    await vmCreate({ data, name: VM, disk: ['256MiB', '128MiB'], nic: ['demo-net/web'] });
    await vmProtect({ data, name: VM, copyFrequency: '30s', appConsistentHours: '1' });
    const vm = await vmAction('start', { data, name: VM });
    say(vmsTable([vm]));
    printHowToLook(
      data,
      vm.disks.map((d) => d.nbd),
    );
    const workloadOpts = compileWorkloadOptions({
      nbd: vm.disks.map((d) => d.nbd),
      rate: flags.rate,
      duration: flags.duration ?? '3650d',
      guestAgent: vm.guestAgentSocket,
      vm: VM,
      verify: true,
    });
    say(`workload: writing ${flags.rate} MB/s (seed ${workloadOpts.seed}); Ctrl-C to stop\n`);
    const seen = new Set<string>();
    const ticker = setInterval(() => void printNewPoints(data, seen).catch(() => undefined), 2500);
    const appCuts = setInterval(() => {
      void vmCut({ data, name: VM, appConsistent: true }).catch((e: unknown) =>
        say(`  cut failed: ${String(e)}\n`),
      );
    }, APP_CONSISTENT_EVERY_MS);
    let summary: WorkloadSummary;
    try {
      summary = await runWorkload(workloadOpts, stop.signal);
    } finally {
      clearInterval(ticker);
      clearInterval(appCuts);
    }
    say(`\nrecovery points of ${VM}:\n${pointsTable(await vmPoints({ data, name: VM }))}`);
    const v = summary.verified;
    say(
      `workload: ${summary.ops} writes, ${summary.mbPerSecond} MB/s, ${summary.freezes} freezes; ` +
        `verified ${v?.blocks ?? 0} blocks, ${v?.mismatches.length ?? 0} mismatches\n`,
    );
    return summary;
  } finally {
    const problem = await stopProcess(agent);
    if (problem) say(`${problem}\n`);
    if (flags.keep)
      say(`kept ${data}; restart its agent with: ${BIN} host start --standalone --data ${data}\n`);
    else rmSync(data, { recursive: true, force: true });
  }
}

/** Runs the single-host demo until `stop` or its --duration; a data mismatch is a failure. */
export async function runSingleHostDemo(opts: DemoOptions, stop: AbortController): Promise<void> {
  const summary = await runDemo(opts, stop);
  const mismatches = summary.verified?.mismatches ?? [];
  if (mismatches.length > 0) {
    throw new SecondsiteError('SS_VERIFY_FAILED', `verification failed: ${mismatches[0]}`, {
      mismatches,
    });
  }
}
