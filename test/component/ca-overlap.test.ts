/**
 * CA rotation with an overlap window, over real gRPC mutual TLS (the replication port):
 *
 * 1. Two CAs with the SAME name, "old" and "new" (a successor keeps its predecessor's name;
 *    they differ by key, which verify.ts tells apart by key identifier). Host hv-b serves the
 *    replication port with a certificate of the new CA and trusts the bundle {old, new}.
 * 2. Overlap: a sender with a leaf of the old CA and one with a leaf of the new CA are both
 *    served; verifyChain agrees for both against the same bundle.
 * 3. The old CA leaves the bundle (withoutExpired after its end, or dropped): the server takes
 *    the new bundle without rebinding. Negative step: the old CA's leaf is refused on a new
 *    connection (and by verifyChain: unknown-ca), while the new CA's leaf is still served.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatIdentity } from '../../certs/identity.ts';
import { certFacts } from '../../certs/inspect.ts';
import { mergeBundles, withoutExpired } from '../../certs/trust-bundle.ts';
import { verifyChain } from '../../certs/verify.ts';
import { silentLogger } from '../../common/log/log.ts';
import {
  createReplicationClient,
  type ReplicationClient,
} from '../../agent/host/transport/replication-client.ts';
import {
  createReplicationServer,
  type ReplicationServer,
} from '../../agent/host/transport/replication-server.ts';
import { RotatingTls } from '../../agent/host/transport/rotating-tls.ts';
import { FakeReplicaSink } from '../fakes/fake-replica-sink.ts';
import { createTestCa, hostIdentity, type IssuedCert, type TestCa } from '../helpers/test-ca.ts';

const VAULT = 'v1';
const SERVER = hostIdentity(VAULT, 'hv-b');
const SENDER = hostIdentity(VAULT, 'hv-a');
const VM = 'vm-1';
const DAY = 86_400_000;

let oldCa: TestCa;
let newCa: TestCa;
let bundle: string;
let serverTls: RotatingTls;
let server: ReplicationServer;
let port: number;
const seen: string[] = [];
const clients: ReplicationClient[] = [];

beforeAll(async () => {
  oldCa = createTestCa({ commonName: 'vault v1 CA' });
  newCa = createTestCa({ commonName: 'vault v1 CA' });
  bundle = mergeBundles(oldCa.rootCertPem, newCa.rootCertPem);
  const cert = newCa.issue(SERVER);
  serverTls = new RotatingTls({ caPem: bundle, certPem: cert.chainPem, keyPem: cert.keyPem });
  server = createReplicationServer({
    address: '127.0.0.1',
    port: 0,
    tls: serverTls,
    authorize: (caller, vmId) => {
      seen.push(caller.fingerprint);
      return vmId === VM && caller.uri === formatIdentity(SENDER);
    },
    handlers: new FakeReplicaSink(),
    log: silentLogger,
  });
  port = await server.listen();
});

afterAll(async () => {
  for (const c of clients) c.close();
  await server?.shutdown();
});

/** A new client (a new connection) as `leaf`, trusting the overlap bundle. */
function ask(leaf: IssuedCert): Promise<unknown> {
  const c = createReplicationClient({
    target: `127.0.0.1:${port}`,
    expectedPeer: SERVER,
    tls: { caPem: bundle, certPem: leaf.chainPem, keyPem: leaf.keyPem },
    log: silentLogger,
  });
  clients.push(c);
  return c.status({ vmId: VM, epoch: 1, deadlineMs: 10_000 });
}

describe('CA rotation overlap', () => {
  it('accepts leaves of the old and the new CA while the bundle holds both', async () => {
    const oldLeaf = oldCa.issue(SENDER);
    const newLeaf = newCa.issue(SENDER);
    expect(verifyChain(oldLeaf.chainPem, [bundle], Date.now())).toEqual({ ok: true });
    expect(verifyChain(newLeaf.chainPem, [bundle], Date.now())).toEqual({ ok: true });
    await expect(ask(oldLeaf)).resolves.toMatchObject({ lastApplied: 0 });
    await expect(ask(newLeaf)).resolves.toMatchObject({ lastApplied: 0 });
    expect(seen).toHaveLength(2);
  });

  it("refuses the old CA's leaves once the old CA has left the bundle", async () => {
    // The old CA leaves at its end: withoutExpired then keeps only the new one.
    const oldEnd = certFacts(oldCa.rootCertPem).notAfter;
    const newOnly = withoutExpired(
      mergeBundles(
        createTestCa({ commonName: 'x', now: oldEnd - 400 * DAY }).rootCertPem,
        newCa.rootCertPem,
      ),
      oldEnd - 1,
    );
    expect(newOnly).toBe(mergeBundles(newCa.rootCertPem));
    const cert = serverTls.current();
    serverTls.update({ ...cert, caPem: newOnly });
    const before = seen.length;
    const oldLeaf = oldCa.issue(SENDER);
    expect(verifyChain(oldLeaf.chainPem, [newOnly], Date.now())).toMatchObject({
      ok: false,
      reason: 'unknown-ca',
    });
    await expect(ask(oldLeaf)).rejects.toMatchObject({ code: 'SS_UNAVAILABLE' });
    expect(seen).toHaveLength(before); // refused at the handshake: no handler ran
    await expect(ask(newCa.issue(SENDER))).resolves.toMatchObject({ lastApplied: 0 });
    expect(await server.listen()).toBe(port);
  });
});
