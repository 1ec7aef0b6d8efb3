/**
 * A whole secondsite installation as real processes in a temporary folder, for e2e scenarios
 * driven through `secondsite … --json`: one coordinator, providers with copies of the
 * deploy/ site files (storage paths moved into the folder), hosts enrolled with their
 * provider's join token on distinct loopback addresses.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import {
  cliJson,
  printedJson,
  runCli,
  startDaemon,
  type CliResult,
  type Daemon,
} from './secondsite-cli.ts';

/** A port free on `ip` now, so a process restarted later listens where others look. */
export function freePort(ip: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, ip, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export function qemuIo(uri: string, ...cmds: string[]): { code: number | null; out: string } {
  const r = spawnSync('qemu-io', ['-f', 'raw', uri, ...cmds.flatMap((c) => ['-c', c])], {
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

export interface LabHost {
  readonly name: string;
  readonly args: readonly string[];
  daemon: Daemon;
}

export class SiteLab {
  readonly dir: string;
  private readonly daemons: Daemon[] = [];
  /** provider name → its host endpoint (HOST:PORT). */
  readonly providerAt: Record<string, string> = {};
  readonly hosts: Record<string, LabHost> = {};
  readonly providers: Record<string, Daemon> = {};
  coordinator: Daemon | undefined;

  constructor(
    prefix: string,
    /** Environment for every process the lab starts (e.g. SECONDSITE_TIME_SCALE). */
    private readonly env: NodeJS.ProcessEnv = {},
  ) {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  cliEnv(): NodeJS.ProcessEnv {
    return { SECONDSITE_CONFIG: this.path('coordinator/admin.json') };
  }

  cli<T>(args: string[], code = 0): Promise<T> {
    return cliJson<T>(args, this.cliEnv(), code);
  }

  /** A command expected to fail: its exit code and the stderr text. */
  async refused(args: string[]): Promise<CliResult> {
    return runCli([...args, '--json'], { env: this.cliEnv() });
  }

  daemon(args: string[], env: NodeJS.ProcessEnv = {}): Daemon {
    const d = startDaemon(args, {
      env: { SECONDSITE_HEARTBEAT_MS: '300', ...this.env, ...env },
    });
    this.daemons.push(d);
    return d;
  }

  private coordinatorStart: { args: string[]; env: NodeJS.ProcessEnv } | undefined;
  private readonly providerArgs: Record<string, string[]> = {};

  /** The coordinator on a fixed free port, so a restart keeps the URL providers know. */
  async startCoordinator(vault = 'prod', env: NodeJS.ProcessEnv = {}): Promise<void> {
    const listen = `127.0.0.1:${await freePort('127.0.0.1')}`;
    const args = ['coordinator', 'start', '--data', this.path('coordinator'), '--listen', listen];
    this.coordinatorStart = { args, env };
    this.coordinator = this.daemon([...args, '--json'], env);
    await printedJson(this.coordinator, 'the coordinator');
    await this.cli(['vault', 'create', vault]);
  }

  /** kill -9 of the coordinator, then the same start again (same data folder and address). */
  async killAndRestartCoordinator(): Promise<void> {
    const start = this.coordinatorStart;
    if (start === undefined || this.coordinator === undefined) throw new Error('no coordinator');
    this.coordinator.child.kill('SIGKILL');
    await this.coordinator.exited;
    this.coordinator = this.daemon([...start.args, '--json'], start.env);
    await printedJson(this.coordinator, 'the restarted coordinator');
  }

  /** Stops a provider (SIGTERM), as when its site is lost. */
  async stopProvider(name: string): Promise<void> {
    const d = this.providers[name];
    if (d === undefined) throw new Error(`no provider ${name}`);
    d.child.kill('SIGTERM');
    await d.exited;
  }

  /** Starts a stopped provider again on its address, without its key (its identity is kept). */
  async restartProvider(name: string): Promise<void> {
    const args = this.providerArgs[name];
    if (args === undefined) throw new Error(`no provider ${name}`);
    const d = this.daemon(args);
    this.providers[name] = d;
    await printedJson(d, `provider ${name}`);
  }

  /** A copy of a deploy/ site file with its storage paths moved into the lab folder. */
  siteCopy(from: string, to: string, patch: (site: Record<string, unknown>) => void): string {
    const text = readFileSync(from, 'utf8').replaceAll('/srv/', `${this.path('srv')}/`);
    const site = JSON.parse(text) as Record<string, unknown>;
    patch(site);
    writeFileSync(this.path(to), JSON.stringify(site, null, 2));
    return this.path(to);
  }

  /** Downloads a key and registers a provider listening on `ip`. */
  async startProvider(name: string, site: string, ip: string, vault = 'prod'): Promise<void> {
    await this.cli(['key', 'download', '--vault', vault, '--out', this.path(`${name}-key.json`)]);
    const common = [
      'provider',
      'start',
      '--data',
      this.path(name),
      '--site',
      site,
      '--listen',
      `${ip}:${await freePort(ip)}`,
      '--json',
    ];
    this.providerArgs[name] = common;
    const d = this.daemon([...common, '--key', this.path(`${name}-key.json`)]);
    this.providers[name] = d;
    this.providerAt[name] = (await printedJson<{ hosts: string }>(d, `provider ${name}`)).hosts;
  }

  /**
   * Enrols and starts a host agent of `provider` on `ip` with replication port `certPort`.
   * The ticket port (8083 in production) is one the OS picks unless given: scenarios running
   * beside other tests must not depend on 8083 being free; the host reports the port it bound.
   * `extra`: more `host start` flags (e.g. the hidden development `--dev-churn-bucket 2s`).
   */
  startHost(
    name: string,
    provider: string,
    ip: string,
    certPort: number,
    ticketPort = 0,
    extra: readonly string[] = [],
  ): LabHost {
    const args = [
      'host',
      'start',
      '--data',
      this.path(name),
      '--name',
      name,
      '--provider',
      this.providerAt[provider] ?? '',
      '--token-file',
      this.path(`${provider}/host-join-token`),
      '--address',
      ip,
      '--cert-port',
      String(certPort),
      '--ticket-port',
      String(ticketPort),
      ...extra,
    ];
    const h: LabHost = { name, args, daemon: this.daemon(args) };
    this.hosts[name] = h;
    return h;
  }

  /** Stops a host (SIGTERM) and waits for its exit. */
  async stopHost(name: string): Promise<void> {
    const h = this.hosts[name];
    if (h === undefined) throw new Error(`no host ${name}`);
    h.daemon.child.kill('SIGTERM');
    expect(await h.daemon.exited).toBe(0);
  }

  /** Starts a stopped host again with the same arguments (its identity is on disk). */
  restartHost(name: string): void {
    const h = this.hosts[name];
    if (h === undefined) throw new Error(`no host ${name}`);
    h.daemon = this.daemon([...h.args]);
  }

  async close(): Promise<void> {
    for (const d of this.daemons) {
      if (d.child.exitCode === null && d.child.signalCode === null) {
        d.child.kill('SIGKILL');
        await d.exited;
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
