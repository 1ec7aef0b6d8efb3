/**
 * The ticket port (8083) end to end over real loopback sockets:
 *
 * 1. Host hv-b serves Replication on 8084 (mutual TLS, a test CA) and, from the same grpc-js
 *    server, on 8083 behind the AP exchange; VM "vm-1" is paired with hv-a. hv-b's long-term
 *    key and replay file are made as enrolment would.
 * 2. hv-a, holding a ticket for hv-b, calls Status and ships a segment through 8083: the
 *    handlers see hv-a as the caller, the data arrives bit-exact.
 * Negative steps: a client without a ticket, a ticket for another host, a valid host not
 * paired with the VM, an AP request replayed byte for byte on a new socket (to the same
 * server, and to a restarted one that reloads its replay file), and a restarted server whose
 * replay file was lost. The capture step records every byte on 8083 and searches it for a
 * marker written as disk data. Throughput of 8083 and 8084 in the same run is printed.

 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Http2Session } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { formatIdentity } from '../../certs/identity.ts';
import { isSecondsiteError, type SecondsiteError } from '../../common/errors/errors.ts';
import { silentLogger } from '../../common/log/log.ts';
import { generateLongTermKey } from '../../common/tickets/crypto.ts';
import { FrameSealer } from '../../common/tickets/frames.ts';
import type { TicketHandshakeMsg } from '../../common/tickets/messages.ts';
import { ReplayCache } from '../../common/tickets/replay-cache.ts';
import { ReplayFileStore, createReplayFile } from '../../common/tickets/replay-file.ts';
import { issueTicket, type ClientCredentials } from '../../common/tickets/ticket.ts';
import { ticketPeerCount } from '../../common/tickets/ticket-peers.ts';
import { LOCAL_HELLO } from '../../agent/host/replication/protocol.ts';
import type { StatusReplyMsg } from '../../agent/host/replication/wire-types.ts';
import { CLIENT_OPTIONS, FLOW_CONTROL_WINDOW } from '../../agent/host/transport/grpc-options.ts';
import {
  createReplicationClient,
  type ReplicationClient,
} from '../../agent/host/transport/replication-client.ts';
import {
  createReplicationServer,
  type ReplicationServer,
} from '../../agent/host/transport/replication-server.ts';
import { replicationService } from '../../agent/host/transport/replication-service.ts';
import { ShipStream } from '../../agent/host/transport/ship-client.ts';
import { SealedStream, readHandshake } from '../../agent/host/transport/ticket-channel.ts';
import {
  connectTicketChannel,
  ticketChannelCredentials,
} from '../../agent/host/transport/ticket-credentials.ts';
import { createTicketServer, type TicketServer } from '../../agent/host/transport/ticket-server.ts';
import { FakeReplicaSink } from '../fakes/fake-replica-sink.ts';
import { makeSegment, materialize } from '../helpers/replication-data.ts';
import { createTestCa, hostIdentity, type TestCa } from '../helpers/test-ca.ts';
import { startTap } from '../helpers/ticket-lab.ts';
import { waitFor } from '../helpers/wait-for.ts';

const SERVER = hostIdentity('v1', 'hv-b');
const SENDER = hostIdentity('v1', 'hv-a');
const STRANGER = hostIdentity('v1', 'hv-x');
const SERVER_URI = formatIdentity(SERVER);
const SENDER_URI = formatIdentity(SENDER);
const VM = 'vm-1';

let ca: TestCa;
let dir: string;
let server: ReplicationServer;
let tlsPort: number;
let ticketServer: TicketServer;
let ticketPort: number;
let sink: FakeReplicaSink;
const hostKey = generateLongTermKey(1);
const keyFor = (v: number): Buffer | undefined => (v === hostKey.version ? hostKey.key : undefined);
const closers: Array<() => unknown> = [];

type GrpcClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

function ticketFor(client: string, server = SERVER_URI, key = hostKey): ClientCredentials {
  return issueTicket({ client, server, serverKey: key, now: Date.now() });
}

function ticketClient(port: number, creds: ClientCredentials | undefined): GrpcClient {
  const Ctor = replicationService();
  const channelCreds = creds
    ? ticketChannelCredentials({ credentials: async () => creds, expectedPeer: creds.server })
    : grpc.credentials.createInsecure();
  const c = new Ctor(`127.0.0.1:${port}`, channelCreds, CLIENT_OPTIONS) as GrpcClient;
  closers.push(() => c.close());
  return c;
}

function status(client: GrpcClient): Promise<StatusReplyMsg> {
  return new Promise((resolve, reject) =>
    client['status']!(
      { hello: { ...LOCAL_HELLO, vmId: VM, epoch: 1 } },
      { deadline: Date.now() + 10_000 },
      (e: grpc.ServiceError | null, r: StatusReplyMsg) => (e ? reject(e) : resolve(r)),
    ),
  );
}

async function ship(client: GrpcClient, seq: number, seed: number, marker?: Buffer) {
  const stream = new ShipStream(client['shipSegments']!() as never, LOCAL_HELLO, SERVER_URI);
  await stream.open({ vmId: VM, epoch: 1 });
  const seg = makeSegment(VM, seq, seed);
  if (marker) {
    const big = seg.extents.find((e) => e.data && e.data.length > 1 << 20)!;
    for (let at = 0; at + marker.length <= big.data!.length; at += 4096) marker.copy(big.data!, at);
  }
  const ack = await stream.ship(seg);
  await stream.close();
  return { ack, seg };
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
    closers.push(() => s.destroy());
  });
}

/** Sends raw bytes as a first frame and returns the server's handshake answer. */
async function answerTo(port: number, bytes: Buffer): Promise<TicketHandshakeMsg> {
  const s = await dial(port);
  s.write(bytes);
  return (await readHandshake(s)).message;
}

async function refusalOf(p: Promise<unknown>): Promise<SecondsiteError> {
  try {
    await p;
  } catch (e) {
    if (isSecondsiteError(e)) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

function ticketServerWith(replay: ReplayCache): Promise<number> {
  const t = createTicketServer({
    address: '127.0.0.1',
    port: 0,
    grpcServer: server.grpcServer,
    self: SERVER_URI,
    keyFor,
    replay,
    log: silentLogger,
  });
  closers.push(() => t.shutdown());
  return t.listen();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ss-ticket-'));
  ca = createTestCa();
  const cert = ca.issue(SERVER);
  sink = new FakeReplicaSink();
  const pairs = new Map([[VM, SENDER_URI]]);
  server = createReplicationServer({
    address: '127.0.0.1',
    port: 0,
    tls: { caPem: ca.rootCertPem, certPem: cert.chainPem, keyPem: cert.keyPem },
    authorize: (caller, vmId) => pairs.get(vmId) === caller.uri,
    handlers: sink,
    log: silentLogger,
  });
  tlsPort = await server.listen();
  createReplayFile(join(dir, 'replay'));
  ticketServer = createTicketServer({
    address: '127.0.0.1',
    port: 0,
    grpcServer: server.grpcServer,
    self: SERVER_URI,
    keyFor,
    replay: new ReplayCache(new ReplayFileStore(join(dir, 'replay')), Date.now()),
    log: silentLogger,
  });
  ticketPort = await ticketServer.listen();
});

afterAll(async () => {
  for (const c of closers.reverse()) await c();
  await ticketServer?.shutdown();
  await server?.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

describe('ticket port 8083', () => {
  it('serves the replication service to a ticket holder, who is the caller', async () => {
    const client = ticketClient(ticketPort, ticketFor(SENDER_URI));
    const reply = await status(client);
    expect(reply.welcome?.protocol).toBe(1);
    const { ack, seg } = await ship(client, 1, 71);
    expect(ack).toEqual({ seq: 1, outcome: 'applied', expectedSeq: 2 });
    expect(sink.calls.at(-1)).toEqual({ vmId: VM, seq: 1, caller: SENDER_URI });
    const [got, sent] = [materialize(sink.applied.get(VM)![0]!.extents), materialize(seg.extents)];
    expect(got.every((d, i) => d.equals(sent[i]!))).toBe(true);
  });

  it('refuses a client without a ticket, and a ticket for another host', async () => {
    const before = sink.calls.length;
    const e = await status(ticketClient(ticketPort, undefined)).catch((x: grpc.ServiceError) => x);
    expect((e as grpc.ServiceError).code).toBe(grpc.status.UNAVAILABLE);
    // A ticket for another host, sealed under that host's key: hv-b says which check failed.
    const other = ticketFor(SENDER_URI, formatIdentity(hostIdentity('v1', 'hv-c')));
    const r = await refusalOf(
      connectTicketChannel(await dial(ticketPort), {
        credentials: async () => other,
        expectedPeer: other.server,
      }),
    );
    expect([r.code, r.details.reason]).toEqual(['SS_TICKET_INVALID', 'wrong-service']);
    expect(sink.calls.length).toBe(before);
  });

  it('authenticates a valid host not paired with the VM, then refuses it the VM', async () => {
    const e = await status(ticketClient(ticketPort, ticketFor(formatIdentity(STRANGER)))).catch(
      (x: grpc.ServiceError) => x,
    );
    expect((e as grpc.ServiceError).code).toBe(grpc.status.PERMISSION_DENIED);
    expect((e as grpc.ServiceError).metadata.get('ss-code')).toEqual(['SS_NOT_PAIRED']);
  });

  it('refuses an AP request replayed on a new socket, also after a restart within 5 minutes', async () => {
    const tap = await startTap(ticketPort);
    closers.push(() => tap.close());
    await status(ticketClient(tap.port, ticketFor(SENDER_URI)));
    const first = Buffer.concat(tap.up[0]!);
    const request = first.subarray(0, 4 + first.readUInt32BE(0));
    const same = await answerTo(ticketPort, request);
    expect(same.step === 'apError' && [same.apError.code, same.apError.reason]).toEqual([
      'SS_REPLAY',
      'replay',
    ]);
    // "Restart": a new listener loads the replay file the first one kept.
    const restarted = await ticketServerWith(
      new ReplayCache(new ReplayFileStore(join(dir, 'replay')), Date.now()),
    );
    const again = await answerTo(restarted, request);
    expect(again.step === 'apError' && again.apError.code).toBe('SS_REPLAY');
    await status(ticketClient(restarted, ticketFor(SENDER_URI))); // fresh ones pass
    // A restart that lost the file refuses every ticket for one skew window.
    const lost = await ticketServerWith(
      new ReplayCache(new ReplayFileStore(join(dir, 'missing')), Date.now()),
    );
    const r = await refusalOf(
      connectTicketChannel(await dial(lost), {
        credentials: async () => ticketFor(SENDER_URI),
        expectedPeer: SERVER_URI,
      }),
    );
    expect([r.code, r.details.reason]).toEqual(['SS_REPLAY', 'replay-cache-warming']);
  });

  it('never shows disk data on the 8083 wire', async () => {
    const marker = Buffer.from(`SS-MARKER-${randomBytes(8).toString('hex')}`);
    const sealed = vi.spyOn(FrameSealer.prototype, 'data'); // calls through, records
    const tap = await startTap(ticketPort);
    closers.push(() => tap.close());
    const next = sink.lastApplied(VM) + 1;
    await ship(ticketClient(tap.port, ticketFor(SENDER_URI)), next, 72, marker);
    // Each call seals one buffer or a batch written together.
    const plain = Buffer.concat(sealed.mock.calls.flatMap(([data]) => data));
    sealed.mockRestore();
    // Control: the marker was in what was sealed (so the search below can fail).
    expect(plain.indexOf(marker)).toBeGreaterThanOrEqual(0);
    const wire = Buffer.concat([...tap.up.flat(), ...tap.down.flat()]);
    expect(wire.length).toBeGreaterThan(9 << 20);
    expect(wire.indexOf(marker)).toBe(-1);
    expect(wire.indexOf(marker.subarray(0, 12))).toBe(-1);
  });

  it('raises the HTTP/2 receive window of 8083 sessions as it does on 8084', async () => {
    await status(ticketClient(ticketPort, ticketFor(SENDER_URI)));
    const sessions = (server.grpcServer as unknown as { sessions: Map<Http2Session, unknown> })
      .sessions;
    const ticketSessions = (): Http2Session[] =>
      [...sessions.keys()].filter(
        (h) => (h.socket as unknown as { stream?: unknown }).stream instanceof SealedStream,
      );
    // The connection window (8 MiB less what the call used), and the streams' window setting.
    await waitFor(
      () =>
        ticketSessions().length > 0 &&
        ticketSessions().every(
          (h) =>
            (h.state.localWindowSize ?? 0) > FLOW_CONTROL_WINDOW / 2 &&
            h.localSettings.initialWindowSize === FLOW_CONTROL_WINDOW,
        ),
    );
  });

  it('forgets a connection once it closes', async () => {
    const before = ticketPeerCount();
    const c = ticketClient(ticketPort, ticketFor(SENDER_URI));
    await status(c);
    expect(ticketPeerCount()).toBe(before + 1);
    c.close();
    await waitFor(() => ticketPeerCount() === before);
  });

  it('measures 8083 against 8084 in the same run (printed, not asserted)', async () => {
    const tlsCert = ca.issue(SENDER);
    const tls: ReplicationClient = createReplicationClient({
      target: `127.0.0.1:${tlsPort}`,
      expectedPeer: SERVER,
      tls: { caPem: ca.rootCertPem, certPem: tlsCert.chainPem, keyPem: tlsCert.keyPem },
      log: silentLogger,
    });
    closers.push(() => tls.close());
    const viaTicket = ticketClient(ticketPort, ticketFor(SENDER_URI));
    const segs = 6;
    const timeIt = async (shipOne: (seq: number, i: number) => Promise<unknown>) => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < segs; i++) await shipOne(sink.lastApplied(VM) + 1, i);
      return Number(process.hrtime.bigint() - t0) / 1e9;
    };
    const bytes = segs * 10.5 * (1 << 20);
    // Segments are made before the clock starts (making one costs more than shipping it).
    const made = Array.from({ length: segs }, (_, i) => makeSegment(VM, 0, 100 + i));
    const open8083 = async (): Promise<ShipStream> => {
      const s = new ShipStream(viaTicket['shipSegments']!() as never, LOCAL_HELLO, SERVER_URI);
      await s.open({ vmId: VM, epoch: 1 });
      return s;
    };
    const over = async (open: () => Promise<ShipStream>, seq: number, i: number) => {
      const s = await open();
      await s.ship({ ...made[i]!, seq });
      await s.close();
    };
    const t8084 = await timeIt((seq, i) =>
      over(() => tls.openShipStream({ vmId: VM, epoch: 1 }), seq, i),
    );
    const t8083 = await timeIt((seq, i) => over(open8083, seq, i));
    console.log(
      `8084 ${(bytes / t8084 / 1e6).toFixed(0)} MB/s, 8083 ${(bytes / t8083 / 1e6).toFixed(0)} MB/s, ratio ${(t8084 / t8083).toFixed(2)}`,
    );
  });
});
