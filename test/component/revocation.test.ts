/**
 * Revocation on 8084: host hv-b serves replication (fake sink behind it) with a revocation
 * list; vm-1 is paired with hv-a, vm-2 with hv-d. A list naming hv-a is pushed while hv-a holds
 * an open ship stream: its next segment on that stream, and its next Status on the same
 * connection, are refused with SS_REVOKED, while hv-d keeps replicating. A list naming one
 * certificate fingerprint refuses that certificate only. An older list version is ignored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatIdentity } from '../../certs/identity.ts';
import { fingerprintOfPem } from '../../certs/inspect.ts';
import { RevocationList } from '../../agent/common/revocation.ts';
import { retryDecision } from '../../agent/host/replication/backoff.ts';
import {
  createReplicationClient,
  type ReplicationClient,
} from '../../agent/host/transport/replication-client.ts';
import {
  createReplicationServer,
  type ReplicationServer,
} from '../../agent/host/transport/replication-server.ts';
import { isSecondsiteError, type SecondsiteError } from '../../common/errors/errors.ts';
import { silentLogger } from '../../common/log/log.ts';
import { FakeReplicaSink } from '../fakes/fake-replica-sink.ts';
import { makeSegment } from '../helpers/replication-data.ts';
import { createTestCa, hostIdentity, type IssuedCert, type TestCa } from '../helpers/test-ca.ts';

const SERVER = hostIdentity('v1', 'hv-b');
const A = hostIdentity('v1', 'hv-a');
const D = hostIdentity('v1', 'hv-d');

let ca: TestCa;
let server: ReplicationServer;
let port: number;
const revoked = new RevocationList();
const clients: ReplicationClient[] = [];

function clientFor(cert: IssuedCert): ReplicationClient {
  const c = createReplicationClient({
    target: `127.0.0.1:${port}`,
    expectedPeer: SERVER,
    tls: { caPem: ca.rootCertPem, certPem: cert.chainPem, keyPem: cert.keyPem },
    log: silentLogger,
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
  const cert = ca.issue(SERVER);
  const pairs = new Map([
    ['vm-1', formatIdentity(A)],
    ['vm-2', formatIdentity(D)],
  ]);
  server = createReplicationServer({
    address: '127.0.0.1',
    port: 0,
    tls: { caPem: ca.rootCertPem, certPem: cert.chainPem, keyPem: cert.keyPem },
    authorize: (caller, vmId) => pairs.get(vmId) === caller.uri,
    handlers: new FakeReplicaSink(),
    log: silentLogger,
    revoked,
  });
  port = await server.listen();
});

afterAll(async () => {
  for (const c of clients) c.close();
  await server?.shutdown();
});

describe('revocation on 8084', () => {
  it('refuses a revoked host on its open stream and connection; others go on', async () => {
    const a = clientFor(ca.issue(A));
    const d = clientFor(ca.issue(D));
    const stream = await a.openShipStream({ vmId: 'vm-1', epoch: 1 });
    expect(await stream.ship(makeSegment('vm-1', 1, 1))).toMatchObject({ outcome: 'applied' });
    expect((await a.status({ vmId: 'vm-1', epoch: 1 })).lastApplied).toBe(1);

    expect(revoked.replace({ version: 1, identities: [formatIdentity(A)], fingerprints: [] })).toBe(
      true,
    );

    const onStream = await errorOf(stream.ship(makeSegment('vm-1', 2, 2)));
    expect(onStream.code).toBe('SS_REVOKED');
    expect(retryDecision(onStream.code)).toBe('stop');
    const onCall = await errorOf(a.status({ vmId: 'vm-1', epoch: 1 }));
    expect(onCall.code).toBe('SS_REVOKED');
    // A new certificate of the revoked host does not help: the identity is revoked.
    const renewed = await errorOf(clientFor(ca.issue(A)).status({ vmId: 'vm-1', epoch: 1 }));
    expect(renewed.code).toBe('SS_REVOKED');
    expect((await d.status({ vmId: 'vm-2', epoch: 1 })).lastApplied).toBe(0);
  });

  it('revokes one certificate by fingerprint; an older list cannot undo a newer one', async () => {
    const stolen = ca.issue(D);
    const other = ca.issue(D);
    expect((await clientFor(stolen).status({ vmId: 'vm-2', epoch: 1 })).lastApplied).toBe(0);
    revoked.replace({
      version: 2,
      identities: [],
      fingerprints: [fingerprintOfPem(stolen.certPem)],
    });
    expect((await errorOf(clientFor(stolen).status({ vmId: 'vm-2', epoch: 1 }))).code).toBe(
      'SS_REVOKED',
    );
    expect((await clientFor(other).status({ vmId: 'vm-2', epoch: 1 })).lastApplied).toBe(0);
    // Version 2 lifted hv-a's identity revocation; a late resend of version 1 is ignored.
    expect(revoked.replace({ version: 1, identities: [formatIdentity(D)], fingerprints: [] })).toBe(
      false,
    );
    expect((await clientFor(other).status({ vmId: 'vm-2', epoch: 1 })).lastApplied).toBe(0);
    expect((await clientFor(ca.issue(A)).status({ vmId: 'vm-1', epoch: 1 })).lastApplied).toBe(1);
  });
});
