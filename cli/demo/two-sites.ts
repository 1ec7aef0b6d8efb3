/**
 * `secondsite demo`: the product's main job on one machine, on loopback.
 *
 *   1. a temp folder (see layout.ts); the coordinator, then New York's and Chicago's providers
 *      registered with keys from the coordinator, then one host agent per site;
 *   2. through the API: vault, policy, association, network and storage maps;
 *   3. the workload (the stand-in guest) on VM1 and VM2 through their NBD URIs;
 *   4. `replication enable VM1 VM2`, then the live status every 2 s;
 *   5. on Ctrl-C, SIGTERM or --duration: stop and verify the workload, print each item's
 *      final state and recovery points;
 *   6. after --duration (not after Ctrl-C), unless --no-failover: a test failover, a planned
 *      failover and a failback of VM1 (failover-tour.ts);
 *   7. stop every process (hosts, providers, coordinator) and remove the folder unless
 *      --keep. After a failure the folder is kept for its logs.
 *
 * Run states: setting-up → live → finishing → stopping → done. `halt` ends setting-up and
 * live alike: the caller's stop (signal, --duration) or a failure (a process exited, a step
 * failed) aborts it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApiClient, ItemView } from '../../common/api-client/index.ts';
import { SecondsiteError, isSecondsiteError } from '../../common/errors/errors.ts';
import { createApiClient } from '../../common/api-client/index.ts';
import { fetchTrusting, loadAdminConfig } from '../admin-config.ts';
import { DemoFolder, NEW_YORK, VAULT, VMS } from './layout.ts';
import type { DemoOptions } from './options.ts';
import { bounded, exitedError, isRunning, stopProcess, type DemoProcess } from './processes.ts';
import { createPolicyAndMaps, enableReplication } from './setup.ts';
import { bringUpSites } from './sites.ts';
import { startWorkloads, stopWorkloads, type VmWorkload } from './workloads.ts';
import { finalLine, screenLines, statusBlock, tryNext } from './status.ts';
import { failoverTour } from './failover-tour.ts';

/** How long the final questions to the coordinator may take (a dead host can stall them). */
const ANSWER_MS = 10_000;

/** How often the live status refreshes. */
const STATUS_EVERY_MS = 2000;

const say = (text: string): boolean => process.stdout.write(text);

export class TwoSiteDemo {
  readonly folder: DemoFolder;
  readonly processes: DemoProcess[] = [];
  private readonly halt = new AbortController();
  private failure: Error | undefined;
  private api: ApiClient | undefined;
  private closeTransport: () => Promise<void> = async () => undefined;
  private workloads: VmWorkload[] = [];
  private enabled = false;

  constructor(
    private readonly opts: DemoOptions,
    stop: AbortSignal,
  ) {
    this.folder = new DemoFolder(mkdtempSync(join(tmpdir(), 'ss-demo-')));
    stop.addEventListener('abort', () => this.halt.abort(), { once: true });
  }

  /** Runs the demo to its end; throws the first failure after everything is stopped. */
  async run(): Promise<void> {
    try {
      await this.setUp();
      await this.live();
    } catch (e) {
      this.fail(e);
    }
    await this.finish().catch((e: unknown) => this.fail(e));
    await this.tour().catch((e: unknown) => this.fail(e));
    await this.stopAll();
    this.cleanUp();
    if (this.failure !== undefined) throw this.failure;
  }

  private fail(e: unknown): void {
    // A step that failed because a process died says less than the process's own exit.
    const died = this.processes.find((p) => !p.stopping && !isRunning(p));
    const cancelled = isSecondsiteError(e) && e.code === 'SS_CANCELLED';
    if (cancelled && died === undefined && this.failure === undefined) {
      say('\nstopped before the setup finished\n'); // by request: not a failure
    } else {
      this.failure ??= died ? exitedError(died) : e instanceof Error ? e : new Error(String(e));
    }
    this.halt.abort();
  }

  private connectApi(adminFile: string): ApiClient {
    const config = loadAdminConfig(adminFile);
    const transport = fetchTrusting(config.caCertPem);
    this.closeTransport = () => transport.close();
    this.api = createApiClient({
      url: config.url,
      token: config.adminToken,
      fetch: transport.fetch,
    });
    return this.api;
  }

  private async setUp(): Promise<void> {
    const { folder, opts } = this;
    say(`secondsite demo: two sites on this machine, in folder ${folder.root}\n`);
    say(`  each process logs to ${folder.path('logs')}/<process>.log\n`);
    if (opts.timeScale !== 1) {
      say(
        `  time runs ${Math.round(1 / opts.timeScale)}x faster for replication ` +
          `(--time-scale ${opts.timeScale}; 1 = real time)\n`,
      );
    }
    const signal = this.halt.signal;
    await bringUpSites(
      { folder, processes: this.processes, timeScale: opts.timeScale, signal },
      (adminFile) => this.connectApi(adminFile),
    );
    const api = this.api;
    if (api === undefined) throw new SecondsiteError('SS_INTERNAL', 'no API client');
    this.goOn();
    say('\nProtection: what an administrator sets up once\n');
    await createPolicyAndMaps(api, opts.timeScale);
    const vms = await Promise.all(VMS.map((vm) => api.getVm(VAULT, `${NEW_YORK.server}/${vm}`)));
    this.goOn();
    this.workloads = startWorkloads(vms, opts.rate);
    say(
      `\nWorkload: ${VMS.join(' and ')} write ${opts.rate} MB/s each through their NBD exports\n` +
        this.workloads.map((w) => `  ${w.vm}: ${w.nbd}\n`).join(''),
    );
    say('\nReplication\n');
    await enableReplication(api, signal, folder.path('logs'));
    this.enabled = true;
    say(tryNext(folder.adminFile, this.workloads[0]?.nbd ?? ''));
  }

  /** Between setup steps: a stop asked meanwhile ends the setup here. */
  private goOn(): void {
    if (this.halt.signal.aborted) throw new SecondsiteError('SS_CANCELLED', 'stopped');
  }

  /** The live status every 2 s until halted; a process that exits is a failure. */
  private async live(): Promise<void> {
    const api = this.api;
    if (api === undefined) return;
    const endsAt =
      this.opts.durationMs === undefined ? undefined : Date.now() + this.opts.durationMs;
    let lines = 0;
    while (!this.halt.signal.aborted) {
      const died = this.processes.find((p) => !isRunning(p));
      if (died !== undefined) throw exitedError(died);
      const failed = this.workloads.find((w) => w.error !== undefined);
      if (failed?.error !== undefined) throw failed.error;
      const ending =
        endsAt === undefined
          ? 'Ctrl-C to stop'
          : `ends in ${Math.max(0, Math.ceil((endsAt - Date.now()) / 1000))} s (Ctrl-C to stop now)`;
      const items = await bounded(api.listItems(VAULT), ANSWER_MS, 'the replicated items');
      const block = statusBlock(new Date(), items, this.workloads, ending);
      // On a terminal the block is redrawn in place; in a log it is appended.
      if (process.stdout.isTTY && lines > 0) say(`\x1b[${lines}A\x1b[J`);
      say(block);
      lines = screenLines(block, process.stdout.columns);
      if (endsAt !== undefined && Date.now() >= endsAt) break;
      await sleep(
        Math.min(STATUS_EVERY_MS, endsAt === undefined ? Infinity : endsAt - Date.now()),
        this.halt.signal,
      );
    }
  }

  /** Stops the workload and verifies it, then prints each item's final state. */
  private async finish(): Promise<void> {
    if (this.workloads.length === 0) return;
    say('\nStopping the workload and reading back what it wrote\n');
    const problem = await stopWorkloads(this.workloads);
    if (this.enabled && this.api !== undefined) await this.finalState(this.api);
    if (problem !== undefined) throw problem;
  }

  /** Test failover, planned failover and failback of VM1 (issue 6), unless --no-failover. */
  private async tour(): Promise<void> {
    if (!this.opts.failover || !this.enabled || this.failure !== undefined) return;
    if (this.api === undefined || this.halt.signal.aborted) return;
    await failoverTour(this.api, VMS[0] ?? 'VM1', this.halt.signal);
  }

  private async finalState(api: ApiClient): Promise<void> {
    const items = await bounded(api.listItems(VAULT), ANSWER_MS, 'the replicated items');
    say('\nFinal state\n');
    const counts = await Promise.all(
      items.map((i) =>
        bounded(api.listRecoveryPoints(VAULT, i.vm), ANSWER_MS, `the recovery points of ${i.vm}`)
          .then((points) => points.length)
          .catch((e: unknown) => (e instanceof Error ? e.message : String(e))),
      ),
    );
    items.forEach((item, n) => say(finalLine(item, counts[n] ?? 0)));
    const critical = items.find((i: ItemView) => i.health === 'critical');
    if (critical !== undefined) {
      throw new SecondsiteError(
        'SS_UNAVAILABLE',
        `${critical.vm} ended critical: ${critical.errors.map((e) => e.message).join('; ')}; ` +
          `read the host logs in ${this.folder.path('logs')}`,
        { vm: critical.vm },
      );
    }
  }

  /** Hosts first, then providers, then the coordinator: the reverse of their start. */
  private async stopAll(): Promise<void> {
    if (this.processes.length === 0) return;
    say('\nStopping the processes\n');
    for (const p of [...this.processes].reverse()) {
      const problem = await stopProcess(p);
      say(`  ${p.name}: ${problem === undefined ? 'stopped' : problem}\n`);
      if (problem !== undefined) {
        this.failure ??= new SecondsiteError('SS_UNAVAILABLE', problem, { log: p.log });
      }
    }
    await this.closeTransport().catch(() => undefined);
  }

  private cleanUp(): void {
    const root = this.folder.root;
    if (this.failure !== undefined) {
      say(`\nkept ${root} for its logs (remove it with: rm -rf ${root})\n`);
      return;
    }
    if (this.opts.keep) say(`\nkept ${root} (remove it with: rm -rf ${root})\n`);
    else {
      rmSync(root, { recursive: true, force: true });
      say(`\nremoved ${root}\n`);
    }
    say('secondsite demo: done; every process stopped cleanly\n');
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, Math.max(0, ms));
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** `secondsite demo`: the two-site demo until `stop` or --duration. */
export async function runTwoSiteDemo(opts: DemoOptions, stop: AbortSignal): Promise<void> {
  await new TwoSiteDemo(opts, stop).run();
}
