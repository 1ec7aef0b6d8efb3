/**
 * Throughput of the replication port, measured through the whole stack (chunking, CRC-32,
 * BLAKE3 digest, optional zstd, gRPC over mutual TLS on loopback) between two processes:
 *
 *   node bin/run-ts.mjs bench/grpc-throughput.ts [GiB=1]
 *
 * Modes, in one run (the machine is noisy: compare them with each other, not across runs):
 * - default-window: the grpc-js server keeps Node's 64 KiB HTTP/2 receive window;
 * - raised-window: the server's session windows raised to 8 MiB (transport/server-window.ts);
 * - raised-window+zstd: as above, zstd level 1 on half-compressible data.
 * The receiver is a sink that verifies every segment and drops it (no disk writes).
 */
import { spawn } from 'node:child_process';
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
  for (const mode of ['default-window', 'raised-window', 'raised-window+zstd']) {
    const gbps = await measure(mode, m, gib);
    process.stdout.write(`${mode.padEnd(20)} ${gbps.toFixed(2)} GB/s of segment data\n`);
  }
}

if (process.argv[2] === 'serve') await serve(process.argv[3] !== 'default-window');
else await main();
