/**
 * Host agents for replication tests: TLS folders made by a test CA, and (in-process) agents
 * built from the same parts as `secondsite host start`, driven through their control sockets.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { silentLogger } from '../../common/log/log.ts';
import { systemClock } from '../../common/time/clock.ts';
import { compileHostConfig, type HostStartFlags } from '../../agent/host/config.ts';
import { createHostAgent, type HostAgent } from '../../agent/host/host-agent.ts';
import type { TestCa } from './test-ca.ts';
import { jsonOf, runCli, startDaemon, type Daemon } from './secondsite-cli.ts';
import { waitFor } from './wait-for.ts';

export const VAULT = 'v1';

/** Writes ca.pem, cert.pem, key.pem for host `name` into `dir` (0600), as enrolment will. */
export function writeHostTls(ca: TestCa, name: string, dir: string, vault = VAULT): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const cert = ca.issueHost(vault, name, {
    ipAddresses: ['127.0.0.1', '127.0.1.1', '127.0.2.1', '::1'],
  });
  writeFileSync(join(dir, 'ca.pem'), ca.rootCertPem, { mode: 0o600 });
  writeFileSync(join(dir, 'cert.pem'), cert.chainPem, { mode: 0o600 });
  writeFileSync(join(dir, 'key.pem'), cert.keyPem, { mode: 0o600 });
  return dir;
}

export interface InProcessHost {
  readonly name: string;
  readonly data: string;
  readonly agent: HostAgent;
  /** The bound replication port. */
  readonly port: number;
  stop(): Promise<void>;
}

/** Starts a host agent in this process on 127.0.0.1 with a free replication port. */
export async function startInProcessHost(
  ca: TestCa,
  name: string,
  data: string,
  /** More `host start` flags, e.g. `{ liveSegments: 'off' }` or a fixed `certPort`. */
  flags: Partial<HostStartFlags> = {},
): Promise<InProcessHost> {
  writeHostTls(ca, name, join(data, 'identity'));
  const config = compileHostConfig({
    data,
    name,
    standalone: true,
    address: '127.0.0.1',
    certPort: '0',
    ...flags,
  });
  const agent = createHostAgent(config, systemClock, silentLogger);
  const abort = new AbortController();
  const running = agent.run(abort.signal);
  const port = await agent.replication.listening();
  if (port === undefined) throw new Error(`host ${name} does not serve replication`);
  await waitFor(() => existsSync(join(data, 'control.sock')), { what: `${name} control socket` });
  return {
    name,
    data,
    agent,
    port,
    async stop() {
      abort.abort();
      await running.catch(() => undefined);
      await agent.shutdown();
    },
  };
}

/** True when `port` can be bound on every address given. */
export async function portFree(port: number, addresses: readonly string[]): Promise<boolean> {
  for (const address of addresses) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, address, () => s.close(() => resolve(true)));
    });
    if (!ok) return false;
  }
  return true;
}

/** REPLICATION_PORT if set, else 8084 when free on `addresses`, else a port the OS picks. */
export async function replicationPort(addresses: readonly string[]): Promise<number> {
  const env = process.env['REPLICATION_PORT'];
  if (env) return Number(env);
  if (await portFree(8084, addresses)) return 8084;
  for (;;) {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, addresses[0], () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    if (await portFree(port, addresses)) return port;
  }
}

export interface HostProcess {
  readonly name: string;
  readonly data: string;
  readonly args: readonly string[];
  daemon: Daemon;
  /** Starts the process again with the same arguments (after a kill). */
  restart(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** `secondsite host start --standalone` as a child process; resolves once it answers. */
export async function startHostProcess(o: {
  name: string;
  data: string;
  address?: string;
  port?: number;
  extra?: readonly string[];
}): Promise<HostProcess> {
  const args = [
    'host',
    'start',
    '--standalone',
    '--data',
    o.data,
    '--name',
    o.name,
    ...(o.address ? ['--address', o.address, '--cert-port', String(o.port ?? 8084)] : []),
    ...(o.extra ?? []),
  ];
  const h: HostProcess = {
    name: o.name,
    data: o.data,
    args,
    daemon: startDaemon(args),
    async restart() {
      h.daemon = startDaemon(args);
      await waitForHost(h);
    },
    async kill(signal = 'SIGKILL') {
      if (h.daemon.child.exitCode === null && h.daemon.child.signalCode === null) {
        h.daemon.child.kill(signal);
      }
      await h.daemon.exited;
    },
  };
  await waitForHost(h);
  return h;
}

async function waitForHost(h: HostProcess): Promise<void> {
  await waitFor(
    async () => {
      const d = h.daemon;
      if (d.child.exitCode !== null) throw new Error(`${h.name} exited: ${d.stderr()}`);
      const r = await runCli(['host', 'vm', 'list', '--data', h.data, '--json']);
      return r.code === 0;
    },
    { what: `host ${h.name} to answer on its control socket`, timeoutMs: 60_000 },
  );
}

/** `secondsite host vm ARGS --data DATA --json`, parsed; throws with the output on failure. */
export async function hostVm<T = unknown>(data: string, ...args: string[]): Promise<T> {
  const r = await runCli(['host', 'vm', ...args, '--data', data, '--json']);
  if (r.code !== 0) throw new Error(`host vm ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return jsonOf<T>(r);
}
