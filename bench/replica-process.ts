/**
 * The two sides of the sync benchmarks: test-CA certificates for both hosts, the replica host
 * as a child process (bench/serve-replica.ts), the source's client of it, and the disk images
 * the scenarios copy and compare.
 */
import { childNodeArgs } from '../test/helpers/secondsite-cli.ts';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { silentLogger } from '../common/log/log.ts';
import { systemClock } from '../common/time/clock.ts';
import { openVmJournal } from '../agent/host/journal/vm-journal.ts';
import { RawDisk } from '../agent/host/vm/raw-disk.ts';
import {
  createReplicationClient,
  type ReplicationClient,
  type SyncClient,
} from '../agent/host/transport/replication-client.ts';
import { ticketChannelCredentials } from '../agent/host/transport/ticket-credentials.ts';
import { formatIdentity } from '../certs/identity.ts';
import { generateLongTermKey, type LongTermKey } from '../common/tickets/crypto.ts';
import { issueTicket } from '../common/tickets/ticket.ts';
import { createTestCa, hostIdentity } from '../test/helpers/test-ca.ts';

export interface Material {
  caPem: string;
  server: { certPem: string; keyPem: string };
  client: { certPem: string; keyPem: string };
  /**
   * The replica host's long-term key (version 1, base64) and identity URI, so its process also
   * serves 8083. A real host makes its long-term key at enrolment and only the coordinator's
   * ticket service learns it; the bench plays both roles, generating the key here and handing
   * it to the replica process as it hands over the test-CA certificates.
   */
  ticketKey?: string;
  serverUri?: string;
}

const MiB = 2 ** 20;
export const REPLICA_HOST = hostIdentity('bench', 'hv-b');

export const SOURCE_HOST = hostIdentity('bench', 'hv-a');

export function makeMaterial(): Material {
  const ca = createTestCa();
  const s = ca.issue(REPLICA_HOST);
  const c = ca.issue(SOURCE_HOST);
  return {
    caPem: ca.rootCertPem,
    server: { certPem: s.chainPem, keyPem: s.keyPem },
    client: { certPem: c.chainPem, keyPem: c.keyPem },
  };
}

/** `m` plus a fresh long-term key for the replica host (its process then serves 8083 too). */
export function withTicketKey(m: Material): Material & { hostKey: LongTermKey } {
  const hostKey = generateLongTermKey(1);
  return {
    ...m,
    ticketKey: hostKey.key.toString('base64'),
    serverUri: formatIdentity(REPLICA_HOST),
    hostKey,
  };
}

export interface Child {
  readonly port: number;
  /** The 8083 port, when the material carried a ticket key. */
  readonly ticketPort: number | undefined;
  /** CPU seconds (user + system, all threads) the process has used so far (Linux /proc). */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** Starts bench/serve-replica.ts with `args`; resolves once it announced its port. */
export async function spawnReplica(
  args: string[],
  m: Material,
  env: Record<string, string> = {},
): Promise<Child> {
  const child: ChildProcess = spawn(
    process.execPath,
    // BENCH_CHILD_NODE_ARGS: e.g. "--cpu-prof" to profile the replica side.
    [...childNodeArgs(), 'bin/run-ts.mjs', 'bench/serve-replica.ts', ...args],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: {
        ...process.env,
        ...env,
        BENCH_MATERIAL: JSON.stringify({ ...m, hostKey: undefined }),
      },
    },
  );
  const line = await createInterface({ input: child.stdout! })[Symbol.asyncIterator]().next();
  if (line.done) throw new Error('bench/serve-replica.ts exited before answering');
  const { port, ticketPort } = JSON.parse(line.value as string) as {
    port: number;
    ticketPort?: number;
  };
  return {
    port,
    ticketPort,
    cpuSeconds: () => procCpuSeconds(child.pid),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

let clockTicks: number | undefined;

/** utime + stime of a process from /proc/PID/stat, in seconds; 0 when unreadable. */
function procCpuSeconds(pid: number | undefined): number {
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    // Fields after the command name ("pid (comm) state …"): utime and stime are 14th and 15th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return 0;
  }
}

/** CPU seconds this process has used so far (all threads). */
export function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

export function replicaClient(port: number, m: Material): ReplicationClient & SyncClient {
  return createReplicationClient({
    target: `127.0.0.1:${port}`,
    expectedPeer: REPLICA_HOST,
    tls: { caPem: m.caPem, ...m.client },
    log: silentLogger,
  });
}

/**
 * The same client over the replica's 8083: a ticket for the source host, issued with the
 * replica's long-term key (the ticket service's part, played by the bench).
 */
export function replicaTicketClient(
  ticketPort: number,
  hostKey: LongTermKey,
): ReplicationClient & SyncClient {
  const server = formatIdentity(REPLICA_HOST);
  const creds = issueTicket({
    client: formatIdentity(SOURCE_HOST),
    server,
    serverKey: hostKey,
    now: Date.now(),
  });
  return createReplicationClient({
    target: `127.0.0.1:${ticketPort}`,
    expectedPeer: REPLICA_HOST,
    tls: { caPem: '', certPem: '', keyPem: '' },
    credentials: ticketChannelCredentials({
      credentials: () => Promise.resolve(creds),
      expectedPeer: server,
    }),
    log: silentLogger,
  });
}

/**
 * A disk image of `size` bytes, 1 MiB chunk by chunk: `zeroShare` of them left as holes
 * (all-zero), the rest "mixed" (VM-like): half random bytes, half repeated text, so zstd
 * level 1 gets roughly 2× on them. Chunks differ from each other (index stamped in).
 */
export function writeMixedImage(path: string, size: number, zeroShare: number, seed = 1): void {
  const fd = openSync(path, 'w', 0o600);
  try {
    ftruncateSync(fd, size);
    const pool = randomBytes(64 * MiB);
    const chunk = Buffer.alloc(MiB);
    chunk.fill('secondsite mixed data ', MiB / 2);
    let x = seed >>> 0;
    for (let i = 0; i * MiB < size; i++) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      if (x / 2 ** 32 < zeroShare) continue;
      const from = (i * 7919 * 4096) % (pool.length - MiB);
      pool.copy(chunk, 0, from, from + MiB / 2);
      chunk.writeUInt32LE(i, 0);
      writeSync(fd, chunk, 0, Math.min(MiB, size - i * MiB), i * MiB);
    }
  } finally {
    closeSync(fd);
  }
}

export function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

export function benchBytes(defaultBytes: number): number {
  const env = process.env['BENCH_BYTES'];
  return env ? Number(env) : defaultBytes;
}

/**
 * The sending side's VM journal over `image` (in `dir`/journal), as a protected VM has one:
 * the source of the initial-copy and resync scenarios. Its cap is far above any bench disk.
 */
export function openImageJournal(dir: string, image: string): ReturnType<typeof openVmJournal> {
  return openVmJournal({
    dir: join(dir, 'journal'),
    vmId: 'bench',
    disks: [RawDisk.open(image)],
    capBytes: 64 * 2 ** 30,
    clock: systemClock,
    log: silentLogger,
  });
}
