/**
 * A connection that drops while the sender is held back by flow control (the replica is busy
 * applying a large segment and reads nothing more) must fail the ship with a typed error that
 * the sender retries — never as an unhandled rejection, which would end the host agent.
 *
 * 1. hv-b serves Replication (fake sink) behind a TCP relay; hv-a connects through the relay.
 * 2. The relay stops forwarding hv-a's bytes, hv-a ships a segment far larger than the HTTP/2
 *    window, so its writer waits for 'drain'; then the relay resets the connection.
 * 3. The ship rejects with SS_UNAVAILABLE (retried), and vitest reports no unhandled error.
 * 4. The same through a VmSender over a real journal: it backs off, reconnects and ships
 *    every segment exactly once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatIdentity } from '../../certs/identity.ts';
import { isSecondsiteError, type SecondsiteError } from '../../common/errors/errors.ts';
import { silentLogger } from '../../common/log/log.ts';
import { FakeClock } from '../../common/time/clock.ts';
import type { Extent } from '../../agent/host/journal/types.ts';
import { retryDecision } from '../../agent/host/replication/backoff.ts';
import type { Pairing } from '../../agent/host/replication/pairing.ts';
import { VmSender } from '../../agent/host/replication/sender.ts';
import {
  createReplicationClient,
  type ReplicationClient,
  type ShipStream,
} from '../../agent/host/transport/replication-client.ts';
import {
  createReplicationServer,
  type ReplicationServer,
} from '../../agent/host/transport/replication-server.ts';
import { startCutRelay, type CutRelay } from '../helpers/cut-relay.ts';
import { FakeReplicaSink } from '../fakes/fake-replica-sink.ts';
import { seededRandom } from '../helpers/seeded-random.ts';
import { makeImage, openSource } from '../helpers/sync-lab.ts';
import { createTestCa, hostIdentity, type TestCa } from '../helpers/test-ca.ts';
import { waitFor } from '../helpers/wait-for.ts';

const SERVER = hostIdentity('v1', 'hv-b');
const SENDER = hostIdentity('v1', 'hv-a');
const VM = 'vm-1';
/** Far above the 8 MiB flow-control window plus socket buffers. */
const BIG = 48 << 20;

let ca: TestCa;
let server: ReplicationServer;
let sink: FakeReplicaSink;
let relay: CutRelay;
const clients: ReplicationClient[] = [];

function client(): ReplicationClient {
  const cert = ca.issue(SENDER);
  const c = createReplicationClient({
    target: `127.0.0.1:${relay.port}`,
    expectedPeer: SERVER,
    tls: { caPem: ca.rootCertPem, certPem: cert.chainPem, keyPem: cert.keyPem },
    log: silentLogger,
  });
  clients.push(c);
  return c;
}

/** True while the stream's writer waits for HTTP/2 flow control ('drain'). */
function blockedOnDrain(s: ShipStream): boolean {
  return (s as unknown as { call: Duplex }).call.writableNeedDrain;
}

function bigExtents(seed: number): Extent[] {
  return [{ disk: 0, offset: 0, length: BIG, data: seededRandom(seed).fill(Buffer.alloc(BIG)) }];
}

beforeAll(async () => {
  ca = createTestCa();
  const cert = ca.issue(SERVER);
  sink = new FakeReplicaSink();
  server = createReplicationServer({
    address: '127.0.0.1',
    port: 0,
    tls: { caPem: ca.rootCertPem, certPem: cert.chainPem, keyPem: cert.keyPem },
    authorize: (caller, vmId) => vmId === VM && caller.uri === formatIdentity(SENDER),
    handlers: sink,
    log: silentLogger,
  });
  relay = await startCutRelay(await server.listen());
});

afterAll(async () => {
  for (const c of clients) c.close();
  await relay?.close();
  await server?.shutdown();
});

describe('a connection dropped while the sender waits for flow control', () => {
  it('fails the ship with a retried error and nothing unhandled', async () => {
    const stream = await client().openShipStream({ vmId: VM, epoch: 1 });
    const seq = stream.lastApplied + 1;
    relay.stall();
    const shipped = stream.ship({
      vmId: VM,
      seq,
      point: { id: `p${seq}`, time: 1, type: 'crash-consistent', segment: seq },
      extents: bigExtents(seq),
    });
    const outcome = shipped.then(
      () => undefined,
      (e: unknown) => e,
    );
    await waitFor(() => blockedOnDrain(stream), { what: 'the writer to wait for drain' });
    relay.drop();
    const e = (await outcome) as SecondsiteError;
    expect(isSecondsiteError(e)).toBe(true);
    expect(e.code).toBe('SS_UNAVAILABLE');
    expect(retryDecision(e.code)).toBe('retry');
    expect(stream.state).toBe('closed');
    // The replica never saw a partial segment.
    expect(sink.lastApplied(VM)).toBe(seq - 1);
  });

  it('sends a VmSender to backoff, and it reconnects and ships every segment once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ss-drop-'));
    try {
      const sizes = [64 << 20];
      makeImage(join(dir, 'src0.img'), sizes[0]!, 1 << 20, seededRandom(5), 1);
      const journal = await openSource(dir, sizes, { capBytes: 1 << 30 });
      sink.applied.clear(); // a new replica: the journal starts at segment 1
      sink.calls.length = 0;
      const base = 0;
      const rnd = seededRandom(9);
      for (let k = 0; k < 3; k++) {
        await journal.disk(0).write(0, rnd.fill(Buffer.alloc(BIG)), false);
        await journal.cut({ type: 'crash-consistent' });
      }
      const pairing: Pairing = {
        schemaVersion: 1,
        role: 'primary',
        peerHost: 'hv-b',
        peerAddress: `127.0.0.1:${relay.port}`,
        vault: 'v1',
        epoch: 1,
        compression: false,
        baseline: 'zero',
      };
      const sender = new VmSender({
        vm: VM,
        pairing,
        journal: () => journal,
        client: client(),
        clock: new FakeClock(),
        log: silentLogger,
        random: () => 0,
        pollMs: 10,
      });
      const ac = new AbortController();
      relay.stall();
      const running = sender.run(ac.signal);
      // Wait until the sender's writer is held back, then break the connection under it.
      await waitFor(() => sender.status.state === 'shipping', { what: 'shipping' });
      const stream = (sender as unknown as { stream?: ShipStream }).stream!;
      await waitFor(() => blockedOnDrain(stream), { what: 'the writer to wait for drain' });
      relay.drop();
      await waitFor(() => sender.status.state === 'backoff', { what: 'backoff' });
      expect(sender.status.lastError).toMatch(/^SS_UNAVAILABLE: /);
      await waitFor(() => sink.lastApplied(VM) === base + 3, { what: 'all segments applied' });
      // The replica applied the last one before its ack reached the sender, which deletes it.
      await waitFor(() => journal.sealedSegments().length === 0, { what: 'segments deleted' });
      ac.abort();
      await running;
      expect(sink.calls.filter((c) => c.seq > base).map((c) => c.seq)).toEqual([
        base + 1,
        base + 2,
        base + 3,
      ]);
      expect(journal.sealedSegments()).toEqual([]);
      await journal.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
