/**
 * Throughput of the replication port, measured through the whole stack (chunking, CRC-32,
 * BLAKE3 digest, optional zstd, gRPC over mutual TLS on loopback) between two processes:
 *
 *   node bin/run-ts.mjs bench/grpc-throughput.ts [GiB=1] [ROUNDS=1]
 *
 * Modes, in one run (the machine is noisy: compare them with each other, not across runs):
 * - default-window: the grpc-js server keeps Node's 64 KiB HTTP/2 receive window;
 * - raised-window: the server's session windows raised to 8 MiB (transport/server-window.ts);
 * - raised-window+zstd: as above, zstd level 1 on half-compressible data.
 * - raw-*: the same gRPC channel without the codec: a client stream of 1 MiB Buffers (what
 *   the transport alone carries), default and raised windows; `@5ms` through a proxy that
 *   delays each direction by 5 ms (a 10 ms round trip, like a metro link), where the window,
 *   not the CPU, sets the pace: at most window ÷ round trip.
 * The receiver is a sink that verifies every segment and drops it (no disk writes).
 */
import { spawn } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import {
  SERVER_OPTIONS,
  CLIENT_OPTIONS,
  FLOW_CONTROL_WINDOW,
} from '../agent/host/transport/grpc-options.ts';
import { raiseServerWindows } from '../agent/host/transport/server-window.ts';
import { createServer, connect, type Server } from 'node:net';
import { createInterface } from 'node:readline';
import { silentLogger } from '../common/log/log.ts';
import type { Extent } from '../agent/host/journal/types.ts';
import { createReplicationClient } from '../agent/host/transport/replication-client.ts';
import { createReplicationServer } from '../agent/host/transport/replication-server.ts';
import { createTestCa, hostIdentity } from '../test/helpers/test-ca.ts';
import { seededRandom } from '../test/helpers/seeded-random.ts';

interface Material {
  caPem: string;
  server: { certPem: string; keyPem: string };
  client: { certPem: string; keyPem: string };
}

const MiB = 1024 * 1024;
const SEGMENT_BYTES = 64 * MiB;

const RAW_PATH = '/bench.Raw/Push';
const same = (b: Buffer): Buffer => b;
const RAW_SERVICE: grpc.ServiceDefinition = {
  push: {
    path: RAW_PATH,
    requestStream: true,
    responseStream: false,
    requestSerialize: same,
    requestDeserialize: same,
    responseSerialize: same,
    responseDeserialize: same,
  },
};

async function serveRaw(raiseWindows: boolean): Promise<void> {
  const m = JSON.parse(process.env['BENCH_MATERIAL'] ?? '{}') as Material;
  const server = new grpc.Server(SERVER_OPTIONS);
  server.addService(RAW_SERVICE, {
    push: (call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      let n = 0;
      call.on('data', (b: Buffer) => (n += b.length));
      call.on('end', () => cb(null, Buffer.from(String(n))));
    },
  });
  const creds = grpc.ServerCredentials.createSsl(
    Buffer.from(m.caPem),
    [{ private_key: Buffer.from(m.server.keyPem), cert_chain: Buffer.from(m.server.certPem) }],
    true,
  );
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? rej(e) : res(p))),
  );
  if (raiseWindows) raiseServerWindows(server, FLOW_CONTROL_WINDOW);
  process.stdout.write(`${port}\n`);
}

async function pushRaw(port: number, m: Material, bytes: number): Promise<number> {
  const creds = grpc.credentials.createSsl(
    Buffer.from(m.caPem),
    Buffer.from(m.client.keyPem),
    Buffer.from(m.client.certPem),
    { checkServerIdentity: () => undefined },
  );
  const client = new grpc.Client(`127.0.0.1:${port}`, creds, {
    ...CLIENT_OPTIONS,
    'grpc.ssl_target_name_override': 'localhost',
  });
  const block = seededRandom(3).fill(Buffer.alloc(MiB));
  const run = async (total: number): Promise<number> => {
    const t0 = process.hrtime.bigint();
    await new Promise<void>((resolve, reject) => {
      const call = client.makeClientStreamRequest(RAW_PATH, same, same, (e) =>
        e ? reject(e) : resolve(),
      );
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          sent += MiB;
          if (!call.write(block)) return void call.once('drain', pump);
        }
        call.end();
      };
      pump();
    });
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  await run(Math.min(64 * MiB, bytes / 8)); // warm-up
  const seconds = await run(bytes);
  client.close();
  return bytes / seconds / 1e9;
}

async function serve(raiseWindows: boolean): Promise<void> {
  const m = JSON.parse(process.env['BENCH_MATERIAL'] ?? '{}') as Material;
  let last = 0;
  const server = createReplicationServer({
    address: '127.0.0.1',
    port: 0,
    tls: { caPem: m.caPem, ...m.server },
    authorize: () => true,
    handlers: {
      lastApplied: () => last,
      applySegment: async (_ctx, seg) => {
        last = seg.seq;
        return 'applied';
      },
    },
    log: silentLogger,
    raiseWindows,
  });
  process.stdout.write(`${await server.listen()}\n`);
}

function segmentData(compressible: boolean): Buffer {
  const rnd = seededRandom(7);
  const b = rnd.fill(Buffer.alloc(SEGMENT_BYTES));
  // Half of every 64 KiB block repeated text: zstd level 1 gets roughly 2× on it, like the
  // VM-like data of LAB.md.
  if (compressible)
    for (let o = 0; o < b.length; o += 64 * 1024) b.fill('secondsite ', o, o + 32 * 1024);
  return b;
}

/** A TCP proxy that delays every byte by `ms` in each direction (order is kept). */
async function delayingProxy(upstreamPort: number, ms: number): Promise<Server> {
  const server = createServer((down) => {
    const up = connect(upstreamPort, '127.0.0.1');
    down.on('data', (b: Buffer) => void setTimeout(() => up.write(b), ms));
    up.on('data', (b: Buffer) => void setTimeout(() => down.write(b), ms));
    for (const x of [down, up]) x.on('error', () => undefined);
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

async function measure(mode: string, m: Material, gib: number): Promise<number> {
  const child = spawn(
    process.execPath,
    ['bin/run-ts.mjs', 'bench/grpc-throughput.ts', 'serve', mode],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, BENCH_MATERIAL: JSON.stringify(m) },
    },
  );
  const lines = createInterface({ input: child.stdout });
  const port = Number((await lines[Symbol.asyncIterator]().next()).value);
  if (mode.startsWith('raw-')) {
    const delayed = mode.endsWith('@5ms');
    const proxy = delayed ? await delayingProxy(port, 5) : undefined;
    const addr = proxy?.address();
    const via = typeof addr === 'object' && addr ? addr.port : port;
    // 64 MiB through the delay: at the default window's 6.5 MB/s that is already 10 s.
    const gbps = await pushRaw(via, m, delayed ? 64 * MiB : gib * 1024 * MiB);
    proxy?.close();
    child.kill('SIGTERM');
    return gbps;
  }
  const client = createReplicationClient({
    target: `127.0.0.1:${port}`,
    expectedPeer: hostIdentity('bench', 'hv-b'),
    tls: { caPem: m.caPem, ...m.client },
    log: silentLogger,
  });
  const zstd = mode.endsWith('zstd');
  const data = segmentData(zstd);
  // 1 MiB extents with a gap between them, as coalesced random writes would leave.
  const extents: Extent[] = [];
  for (let i = 0; i < SEGMENT_BYTES / MiB; i++) {
    extents.push({
      disk: 0,
      offset: i * 2 * MiB,
      length: MiB,
      data: data.subarray(i * MiB, (i + 1) * MiB),
    });
  }
  const stream = await client.openShipStream({ vmId: 'vm', epoch: 1 });
  const seg = (seq: number) => ({
    vmId: 'vm',
    seq,
    point: { id: `p${seq}`, time: 0, type: 'crash-consistent' as const, segment: seq },
    extents,
  });
  await stream.ship(seg(1), { compress: zstd }); // warm-up: connection, buffers, JIT
  const count = Math.max(1, Math.round((gib * 1024 * MiB) / SEGMENT_BYTES));
  const t0 = process.hrtime.bigint();
  // Two segments in flight, as a sender with a backlog would run.
  const inFlight: Promise<unknown>[] = [];
  for (let s = 2; s < 2 + count; s++) {
    inFlight.push(stream.ship(seg(s), { compress: zstd }));
    if (inFlight.length >= 2) await inFlight.shift();
  }
  await Promise.all(inFlight);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await stream.close();
  client.close();
  child.kill('SIGTERM');
  return (count * SEGMENT_BYTES) / seconds / 1e9;
}

async function main(): Promise<void> {
  const gib = Number(process.argv[2] ?? '1');
  const ca = createTestCa();
  const s = ca.issue(hostIdentity('bench', 'hv-b'));
  const c = ca.issue(hostIdentity('bench', 'hv-a'));
  const m: Material = {
    caPem: ca.rootCertPem,
    server: { certPem: s.chainPem, keyPem: s.keyPem },
    client: { certPem: c.chainPem, keyPem: c.keyPem },
  };
  const modes = [
    'raw-default-window@5ms',
    'raw-raised-window@5ms',
    'raw-default-window',
    'raw-raised-window',
    'default-window',
    'raised-window',
    'raised-window+zstd',
  ];
  const rounds = Number(process.argv[3] ?? '1');
  const figures = new Map<string, number[]>(modes.map((x) => [x, []]));
  // Rounds interleave the modes so that a burst of load on the shared machine hits all alike.
  for (let r = 0; r < rounds; r++) {
    for (const mode of modes) figures.get(mode)!.push(await measure(mode, m, gib));
  }
  for (const [mode, list] of figures) {
    const sorted = [...list].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    process.stdout.write(
      `${mode.padEnd(24)} ${(median * 1000).toFixed(0)} MB/s (median of ${list.length}: ${list.map((x) => (x * 1000).toFixed(0)).join(' ')})\n`,
    );
  }
}

if (process.argv[2] === 'serve' && process.argv[3]?.startsWith('raw-')) {
  await serveRaw(!process.argv[3].startsWith('raw-default-window'));
} else if (process.argv[2] === 'serve') await serve(process.argv[3] !== 'default-window');
else await main();
