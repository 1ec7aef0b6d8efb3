/**
 * A benchmark replica host in its own process (so the source's reads, hashing and encoding
 * never share an event loop with the replica's writes), in one of two modes:
 *
 *   node bin/run-ts.mjs bench/serve-replica.ts replica DIR SIZE
 *     The replication port on 127.0.0.1:0 with mutual TLS (material in BENCH_MATERIAL, as
 *     bench/grpc-throughput.ts passes it), a recovery store over DIR/replica.raw (created
 *     sparse when missing) and the InitialCopy and ResyncHashes engines behind it. With
 *     BENCH_POINT=1 the store first records one point (a segment rewriting 4 KiB in place), so
 *     a resync keeps undo data as it would on a replica with history.
 *   node bin/run-ts.mjs bench/serve-replica.ts tls-sink
 *     A plain node:tls server (same certificates, TLS 1.3) that reads and drops bytes and
 *     answers "done" after BENCH_TLS_BYTES of them: the raw TLS baseline.
 *
 * With `ticketKey` in BENCH_MATERIAL (the replica's long-term key, which the bench generated and
 * handed over as it does the test-CA certificates; a real host makes its own at enrolment), the
 * replica mode also serves the ticket port (8083) from the same grpc-js server, on 127.0.0.1:0.
 *
 * Prints `{"port": …, "ticketPort": …}` on stdout when ready; runs until SIGTERM.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:tls';
import { silentLogger } from '../common/log/log.ts';
import { systemClock } from '../common/time/clock.ts';
import { openReplicaStore } from '../agent/host/recovery/replica-store.ts';
import { InitialCopyTarget } from '../agent/host/sync/initial-copy-target.ts';
import { ResyncTarget } from '../agent/host/sync/resync-target.ts';
import { MemoryReplayStore, ReplayCache } from '../common/tickets/replay-cache.ts';
import {
  createReplicationServer,
  type ReplicationServer,
} from '../agent/host/transport/replication-server.ts';
import { createTicketServer, type TicketServer } from '../agent/host/transport/ticket-server.ts';
import { RawDisk, createSparseImage } from '../agent/host/vm/raw-disk.ts';

interface Material {
  caPem: string;
  server: { certPem: string; keyPem: string };
  /** The replica host's long-term key (version 1), base64, when 8083 is benchmarked. */
  ticketKey?: string;
  /** The replica host's identity URI (what its tickets are for). */
  serverUri?: string;
}

const material = JSON.parse(process.env['BENCH_MATERIAL'] ?? '{}') as Material;
const [mode, dir, sizeText] = process.argv.slice(2);

async function serveReplica(dir: string, size: number): Promise<() => Promise<void>> {
  const path = join(dir, 'replica.raw');
  mkdirSync(join(dir, 'sync'), { recursive: true });
  if (!existsSync(path)) createSparseImage(path, size);
  const disk = RawDisk.open(path);
  const store = await openReplicaStore({
    dir: join(dir, 'store'),
    vmId: 'bench',
    disks: [disk],
    diskPaths: [path],
    clock: systemClock,
    log: silentLogger,
    retentionHours: 24,
  });
  if (process.env['BENCH_POINT'] === '1' && store.lastApplied === 0) {
    const data = disk.readSync(0, 4096, Buffer.alloc(4096));
    const point = { id: 'p1', time: Date.now(), type: 'crash-consistent', segment: 1 } as const;
    await store.apply({ seq: 1, point, extents: [{ disk: 0, offset: 0, length: 4096, data }] });
  }
  const server = createReplicationServer({
    address: '127.0.0.1',
    port: 0,
    tls: { caPem: material.caPem, ...material.server },
    authorize: () => true,
    handlers: {
      lastApplied: () => store.lastApplied,
      applySegment: (_ctx, seg) => store.apply(seg),
      initialCopyTarget: () =>
        new InitialCopyTarget({
          dir: join(dir, 'sync'),
          disks: [disk],
          diskPaths: [path],
          store,
          ...(process.env['BENCH_FLUSH_BYTES']
            ? { flushEveryBytes: Number(process.env['BENCH_FLUSH_BYTES']) }
            : {}),
          log: silentLogger,
        }),
      resyncTarget: () => new ResyncTarget({ store, disks: [disk], log: silentLogger }),
    },
    log: silentLogger,
  });
  const port = await server.listen();
  const ticket = material.ticketKey ? serveTicketPort(server.grpcServer) : undefined;
  const ticketPort = ticket ? await ticket.listen() : undefined;
  process.stdout.write(`${JSON.stringify({ port, ticketPort })}\n`);
  return async () => {
    await ticket?.shutdown();
    await server.shutdown();
    await store.close();
    await disk.close();
  };
}

function serveTicketPort(grpcServer: ReplicationServer['grpcServer']): TicketServer {
  const key = Buffer.from(material.ticketKey!, 'base64');
  return createTicketServer({
    address: '127.0.0.1',
    port: 0,
    grpcServer,
    self: material.serverUri!,
    keyFor: (version) => (version === 1 ? key : undefined),
    // In memory: a bench replica lives for one run, so nothing can replay across a restart.
    replay: new ReplayCache(new MemoryReplayStore(), Date.now()),
    log: silentLogger,
  });
}

async function serveTlsSink(): Promise<() => Promise<void>> {
  const want = Number(process.env['BENCH_TLS_BYTES']);
  const server = createServer({
    ca: material.caPem,
    cert: material.server.certPem,
    key: material.server.keyPem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
  });
  server.on('secureConnection', (socket) => {
    let got = 0;
    socket.on('data', (b: Buffer) => {
      got += b.length;
      if (got >= want) socket.end('done');
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  return () => new Promise<void>((r) => server.close(() => r()));
}

let stop: () => Promise<void>;
if (mode === 'replica' && dir && sizeText) stop = await serveReplica(dir, Number(sizeText));
else if (mode === 'tls-sink') stop = await serveTlsSink();
else {
  process.stderr.write('usage: serve-replica.ts replica DIR SIZE | tls-sink\n');
  process.exit(2);
}
process.once('SIGTERM', () => {
  void stop().finally(() => process.exit(0));
});
