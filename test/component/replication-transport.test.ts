/**
 * The replication port end to end over real gRPC with mutual TLS and a test CA:
 *
 * 1. A test CA is made at suite start; host hv-b serves Replication on 127.0.0.1:0 and pairs
 *    VM "vm-1" with host hv-a. The receiver behind it is a fake sink (test/fakes): the real
 *    recovery store is plugged in by the sender/receiver wiring, not by the transport.
 * 2. hv-a opens a ship stream (Hello → Welcome, Resume) and ships segments; what arrives is
 *    compared with what was sent, byte for byte, after the handshake agreed on zstd, BLAKE3
 *    and zero ranges.
 * Negative steps: a corrupted chunk (refused, then resent), incompatible versions (typed,
 * not retried), frames out of order, no client certificate, another CA, a certificate that
 * expires while its connection stays open, a host not paired with the VM, a server with the
 * wrong identity.
 */
import { createServer, connect, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatIdentity } from '../../certs/identity.ts';
import { silentLogger } from '../../common/log/log.ts';
import { isSecondsiteError, type SecondsiteError } from '../../common/errors/errors.ts';
import { retryDecision } from '../../agent/host/replication/backoff.ts';
import { ALL_FEATURES } from '../../agent/host/replication/protocol.ts';
import {
  createReplicationClient,
  type ReplicationClient,
} from '../../agent/host/transport/replication-client.ts';
import {
  createReplicationServer,
  type ReplicationServer,
} from '../../agent/host/transport/replication-server.ts';
import { replicationService } from '../../agent/host/transport/replication-service.ts';
import { sessionWindows } from '../../agent/host/transport/server-window.ts';
import { FakeReplicaSink } from '../fakes/fake-replica-sink.ts';
import { makeSegment, materialize } from '../helpers/replication-data.ts';
import {
  createTestCa,
  hostIdentity,
  providerIdentity,
  type IssuedCert,
  type TestCa,
} from '../helpers/test-ca.ts';
import { waitFor } from '../helpers/wait-for.ts';

const VAULT = 'v1';
const SERVER = hostIdentity(VAULT, 'hv-b');
const SENDER = hostIdentity(VAULT, 'hv-a');
const VM = 'vm-1';

let ca: TestCa;
let server: ReplicationServer;
let port: number;
let sink: FakeReplicaSink;
let sender: IssuedCert;
const clients: ReplicationClient[] = [];

function clientFor(
  cert: IssuedCert,
  opts: {
    expectedPeer?: typeof SERVER;
    caPem?: string;
    local?: Parameters<typeof createReplicationClient>[0]['local'];
  } = {},
): ReplicationClient {
  const c = createReplicationClient({
    target: `127.0.0.1:${port}`,
    expectedPeer: opts.expectedPeer ?? SERVER,
    tls: { caPem: opts.caPem ?? ca.rootCertPem, certPem: cert.chainPem, keyPem: cert.keyPem },
    log: silentLogger,
    ...(opts.local ? { local: opts.local } : {}),
  });
  clients.push(c);
  return c;
}

async function errorOf(p: Promise<unknown>): Promise<SecondsiteError> {
  try {
    await p;
  } catch (e) {
    if (isSecondsiteError(e)) return e;
    throw e;
  }
  throw new Error('expected a failure');
}

beforeAll(async () => {
  ca = createTestCa();
  sender = ca.issue(SENDER);
  const cert = ca.issue(SERVER);
  sink = new FakeReplicaSink();
  const pairs = new Map([[VM, formatIdentity(SENDER)]]);
  server = createReplicationServer({
    address: '127.0.0.1',
    port: 0,
    tls: { caPem: ca.rootCertPem, certPem: cert.chainPem, keyPem: cert.keyPem },
    authorize: (caller, vmId) => pairs.get(vmId) === caller.uri,
    handlers: sink,
    log: silentLogger,
  });
  port = await server.listen();
});

afterAll(async () => {
  for (const c of clients) c.close();
  await server?.shutdown();
});

describe('replication transport', () => {
  it('ships segments bit-exact, acks each once, and answers duplicates', async () => {
    const stream = await clientFor(ca.issue(SENDER)).openShipStream({ vmId: VM, epoch: 1 });
    expect(stream.agreement).toEqual({ protocol: 1, features: ALL_FEATURES });
    expect(stream.lastApplied).toBe(0);
    const segs = [makeSegment(VM, 1, 11), makeSegment(VM, 2, 12)];
    // Both are in flight at once: acks come back in order.
    const acks = await Promise.all(segs.map((s) => stream.ship(s, { compress: true })));
    expect(acks).toEqual([
      { seq: 1, outcome: 'applied', expectedSeq: 2 },
      { seq: 2, outcome: 'applied', expectedSeq: 3 },
    ]);
    const got = sink.applied.get(VM)!;
    for (const [i, seg] of segs.entries()) {
      expect(got[i]!.point).toEqual(seg.point);
      const [a, b] = [materialize(got[i]!.extents), materialize(seg.extents)];
      expect(a.every((d, k) => d.equals(b[k]!))).toBe(true);
    }
    expect(await stream.ship(segs[0]!)).toEqual({ seq: 1, outcome: 'duplicate', expectedSeq: 3 });
    await stream.close();
    // The server raised its receive window for this connection (server-window.ts): what
    // remains of an 8 MiB window is far above the 64 KiB default (65,535 bytes).
    expect(Math.max(...sessionWindows(server.grpcServer))).toBeGreaterThan(1024 * 1024);
  });

  it('refuses a corrupted chunk and accepts the segment when it is sent again', async () => {
    const client = clientFor(ca.issue(SENDER));
    const stream = await client.openShipStream({ vmId: VM, epoch: 1 });
    const seq = stream.lastApplied + 1;
    const seg = makeSegment(VM, seq, 13);
    const before = sink.calls.length;
    const e = await errorOf(
      stream.ship(seg, {
        tamperChunk: (c, i) => void (i === 1 && (c.payload = flipped(c.payload))),
      }),
    );
    expect(e.code).toBe('SS_CHECKSUM_MISMATCH');
    expect(retryDecision(e.code)).toBe('retry');
    expect(sink.calls.length).toBe(before); // nothing reached the receiver
    expect(await stream.ship(seg)).toMatchObject({ seq, outcome: 'applied' });
    expect((await client.status({ vmId: VM, epoch: 1 })).lastApplied).toBe(seq);
    await stream.close();
  });

  it('reports a gap as SS_SEGMENT_OUT_OF_ORDER with where to resume', async () => {
    const stream = await clientFor(ca.issue(SENDER)).openShipStream({ vmId: VM, epoch: 1 });
    const e = await errorOf(stream.ship(makeSegment(VM, stream.lastApplied + 5, 14)));
    expect(e.code).toBe('SS_SEGMENT_OUT_OF_ORDER');
    expect(e.details['expectedSeq']).toBe(stream.lastApplied + 1);
    expect(retryDecision(e.code)).toBe('resume');
    await stream.close();
  });

  it('ends the handshake of incompatible versions with a typed error that is not retried', async () => {
    const client = clientFor(ca.issue(SENDER), {
      local: { protocolMin: 2, protocolMax: 3, featureFlags: ALL_FEATURES },
    });
    const e = await errorOf(client.openShipStream({ vmId: VM, epoch: 1 }));
    expect(e.code).toBe('SS_PROTOCOL_INCOMPATIBLE');
    expect(e.message).toMatch(/no common protocol version/);
    expect(retryDecision(e.code)).toBe('stop');
    expect((await errorOf(client.status({ vmId: VM, epoch: 1 }))).code).toBe(
      'SS_PROTOCOL_INCOMPATIBLE',
    );
  });

  it('closes a stream whose frames come out of order', async () => {
    const cert = ca.issue(SENDER);
    const raw = rawClient(cert);
    const call = raw['shipSegments']!() as grpc.ClientDuplexStream<object, object>;
    const status = new Promise<grpc.StatusObject>((r) => call.on('status', r));
    call.on('error', () => undefined);
    call.on('data', () => undefined);
    call.write({ chunk: { extents: [], payload: Buffer.alloc(0) } });
    const s = await status;
    expect(s.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(s.metadata.get('ss-code')).toEqual(['SS_PROTOCOL']);
    raw.close();
  });

  it('refuses a client without a certificate, and one from another CA, at the handshake', async () => {
    const noCert = rawClient(undefined);
    const e1 = await new Promise<grpc.ServiceError | null>((r) =>
      noCert['status']!({}, { deadline: Date.now() + 20_000 }, r),
    );
    expect(e1?.code).toBe(grpc.status.UNAVAILABLE);
    noCert.close();
    const other = createTestCa();
    const e2 = await errorOf(clientFor(other.issue(SENDER)).status({ vmId: VM, epoch: 1 }));
    expect(e2.code).toBe('SS_UNAVAILABLE');
  });

  it('refuses a certificate that expired while its connection stayed open', async () => {
    const notAfter = Date.now() + 2_000;
    const client = clientFor(ca.issue(SENDER, { notAfter }));
    expect((await client.status({ vmId: VM, epoch: 1 })).lastApplied).toBeGreaterThan(0);
    const stream = await client.openShipStream({ vmId: VM, epoch: 1 });
    await waitFor(() => Date.now() > notAfter + 1_000, { what: 'the certificate to expire' });
    // The stream opened while the certificate was valid: its next segment is refused.
    const onStream = await errorOf(stream.ship(makeSegment(VM, stream.lastApplied + 1, 15)));
    expect(onStream.code).toBe('SS_CERT_INVALID');
    const e = await errorOf(client.status({ vmId: VM, epoch: 1 }));
    expect(e.code).toBe('SS_CERT_INVALID');
    expect(e.message).toMatch(/expired/);
    const s = await errorOf(client.openShipStream({ vmId: VM, epoch: 1 }));
    expect(s.code).toBe('SS_CERT_INVALID');
  });

  it('refuses a valid host that is not paired with the VM', async () => {
    const stranger = hostIdentity(VAULT, 'hv-c');
    const client = clientFor(ca.issue(stranger));
    const e = await errorOf(client.openShipStream({ vmId: VM, epoch: 1 }));
    expect(e.code).toBe('SS_NOT_PAIRED');
    expect(e.message).toBe(
      `host ${formatIdentity(stranger)} is not paired with VM ${VM} on this host`,
    );
    expect(retryDecision(e.code)).toBe('stop');
    const raw = rawClient(ca.issue(stranger));
    const err = await new Promise<grpc.ServiceError | null>((r) =>
      raw['status']!({ hello: { protocolMin: 1, protocolMax: 1, vmId: VM } }, {}, r),
    );
    expect(err?.code).toBe(grpc.status.PERMISSION_DENIED);
    raw.close();
  });

  it('refuses a certificate of the vault that is not a host', async () => {
    const provider = clientFor(ca.issue(providerIdentity(VAULT, 'site-a')));
    const e = await errorOf(provider.status({ vmId: VM, epoch: 1 }));
    expect(e.code).toBe('SS_UNAUTHENTICATED');
  });

  it('resumes after a break mid-segment without applying anything twice', async () => {
    const client = clientFor(ca.issue(SENDER));
    const first = await client.openShipStream({ vmId: VM, epoch: 1 });
    const seq = first.lastApplied + 1;
    const seg = makeSegment(VM, seq, 16);
    const broken = first.ship(seg, {
      // Break the stream while the segment's chunks are being written.
      tamperChunk: (_c, i) => void (i === 2 && first.cancel()),
    });
    expect((await errorOf(broken)).code).toBe('SS_CANCELLED');
    const again = await client.openShipStream({ vmId: VM, epoch: 1 });
    expect(again.lastApplied).toBe(seq - 1); // the partial segment was never applied
    expect(await again.ship(seg)).toMatchObject({ seq, outcome: 'applied' });
    // A sender that did not see the ack ships it once more: a duplicate, not a second apply.
    expect(await again.ship(seg)).toMatchObject({ seq, outcome: 'duplicate' });
    expect(sink.applied.get(VM)!.filter((s) => s.seq === seq)).toHaveLength(1);
    await again.close();
  });

  it('notices a silent partition through keepalive and fails the stream', async () => {
    const proxy = await startSilenceableProxy(port);
    try {
      const client = createReplicationClient({
        target: `127.0.0.1:${proxy.port}`,
        expectedPeer: SERVER,
        tls: { caPem: ca.rootCertPem, certPem: sender.chainPem, keyPem: sender.keyPem },
        log: silentLogger,
      });
      clients.push(client);
      const stream = await client.openShipStream({ vmId: VM, epoch: 1 });
      proxy.silence(); // packets vanish both ways; no FIN, no RST
      const e = await errorOf(stream.ship(makeSegment(VM, stream.lastApplied + 1, 17)));
      expect(e.code).toBe('SS_UNAVAILABLE');
    } finally {
      proxy.close();
    }
  });

  it('refuses a server whose identity is not the expected peer', async () => {
    const client = clientFor(ca.issue(SENDER), { expectedPeer: hostIdentity(VAULT, 'hv-x') });
    expect((await errorOf(client.status({ vmId: VM, epoch: 1 }))).code).toBe('SS_UNAVAILABLE');
  });
});

function flipped(b: Buffer): Buffer {
  const c = Buffer.from(b);
  c[c.length >> 1]! ^= 0xff;
  return c;
}

/** A plain grpc-js client of the service, for what our client never sends. */
function rawClient(
  cert: IssuedCert | undefined,
): grpc.Client & Record<string, (...a: unknown[]) => unknown> {
  const creds = grpc.credentials.createSsl(
    Buffer.from(ca.rootCertPem),
    cert ? Buffer.from(cert.keyPem) : null,
    cert ? Buffer.from(cert.chainPem) : null,
    { checkServerIdentity: () => undefined },
  );
  const Ctor = replicationService();
  return new Ctor(`127.0.0.1:${port}`, creds, {
    'grpc.ssl_target_name_override': 'localhost',
  }) as grpc.Client & Record<string, (...a: unknown[]) => unknown>;
}

/**
 * A TCP proxy that can go silent: after silence() it drops every byte both ways without
 * closing anything, as a partition that drops packets would. Only keepalive can notice.
 */
async function startSilenceableProxy(
  upstreamPort: number,
): Promise<{ port: number; silence(): void; close(): void }> {
  let silent = false;
  const sockets: Socket[] = [];
  const server = createServer((down) => {
    const up = connect(upstreamPort, '127.0.0.1');
    sockets.push(down, up);
    down.on('data', (b: Buffer) => void (silent || up.write(b)));
    up.on('data', (b: Buffer) => void (silent || down.write(b)));
    for (const s of [down, up]) s.on('error', () => undefined);
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    silence: () => void (silent = true),
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
