/**
 * The 8084 negative cases of issue #7 against a real host agent (in process, built like
 * `secondsite host start`): host hv-b of vault v1 serves replication on 127.0.0.1:0 and has VM
 * "vm1" paired as a replica of hv-a. Each case calls Status for vm1 with one client
 * certificate; only hv-a's valid certificate is answered. The refusals:
 *
 * - no client certificate, another CA, expired, not yet valid: at the TLS handshake (the
 *   client sees SS_UNAVAILABLE, gRPC UNAVAILABLE);
 * - a valid host of another vault (its certificate chains to the same root through that
 *   vault's intermediate) and a valid host of v1 not paired with vm1: by the receiver's
 *   authorisation (SS_NOT_PAIRED).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSecondsiteError, type SecondsiteError } from '../../common/errors/errors.ts';
import { silentLogger } from '../../common/log/log.ts';
import {
  createReplicationClient,
  type ReplicationClient,
} from '../../agent/host/transport/replication-client.ts';
import { replicationService } from '../../agent/host/transport/replication-service.ts';
import { hostVm, startInProcessHost, type InProcessHost } from '../helpers/replication-lab.ts';
import {
  createTestCa,
  createTestIntermediateCa,
  hostIdentity,
  type IssuedCert,
  type TestCa,
} from '../helpers/test-ca.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const VAULT = 'v1';
const SERVER = hostIdentity(VAULT, 'hv-b');
const VM = 'vm1';

let dir: string;
let ca: TestCa;
let host: InProcessHost;
const clients: ReplicationClient[] = [];

function clientFor(cert: IssuedCert, caPem = ca.rootCertPem): ReplicationClient {
  const c = createReplicationClient({
    target: `127.0.0.1:${host.port}`,
    expectedPeer: SERVER,
    tls: { caPem, certPem: cert.chainPem, keyPem: cert.keyPem },
    log: silentLogger,
  });
  clients.push(c);
  return c;
}

async function refusal(cert: IssuedCert): Promise<SecondsiteError> {
  try {
    await clientFor(cert).status({ vmId: VM, epoch: 1, deadlineMs: 20_000 });
  } catch (e) {
    if (isSecondsiteError(e)) return e;
    throw e;
  }
  throw new Error('expected the call to be refused');
}

/** Status over a plain grpc-js client, with `cert` or with no client certificate at all. */
async function rawStatus(cert: IssuedCert | undefined): Promise<grpc.ServiceError | null> {
  const creds = grpc.credentials.createSsl(
    Buffer.from(ca.rootCertPem),
    cert ? Buffer.from(cert.keyPem) : null,
    cert ? Buffer.from(cert.chainPem) : null,
    { checkServerIdentity: () => undefined },
  );
  const Ctor = replicationService();
  const raw = new Ctor(`127.0.0.1:${host.port}`, creds) as grpc.Client &
    Record<string, (...a: unknown[]) => unknown>;
  try {
    return await new Promise<grpc.ServiceError | null>((r) =>
      raw['status']!(
        { hello: { protocolMin: 1, protocolMax: 1, vmId: VM, epoch: 1 } },
        { deadline: Date.now() + 20_000 },
        r,
      ),
    );
  } finally {
    raw.close();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ss-mtls-neg-'));
  ca = createTestCa();
  host = await startInProcessHost(ca, 'hv-b', join(dir, 'b'));
  await hostVm(
    host.data,
    'pair',
    VM,
    '--role',
    'replica',
    '--peer-host',
    'hv-a',
    '--peer-address',
    '127.0.0.1:1',
    '--disk',
    '1MiB',
    '--vault',
    VAULT,
  );
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await host?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('8084 refuses every certificate but the paired host’s', () => {
  it('answers the paired host hv-a (the positive path)', async () => {
    const got = await clientFor(ca.issueHost(VAULT, 'hv-a')).status({ vmId: VM, epoch: 1 });
    expect(got.lastApplied).toBe(0);
  });

  it('refuses a client without a certificate at the handshake', async () => {
    // The same raw client with hv-a's certificate is answered: only the certificate differs.
    expect(await rawStatus(ca.issueHost(VAULT, 'hv-a'))).toBeNull();
    expect((await rawStatus(undefined))?.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('refuses a certificate of another CA at the handshake', async () => {
    const other = createTestCa({ commonName: 'another CA' });
    expect((await refusal(other.issueHost(VAULT, 'hv-a'))).code).toBe('SS_UNAVAILABLE');
  });

  it('refuses an expired certificate at the handshake', async () => {
    const expired = ca.issueHost(VAULT, 'hv-a', { now: Date.now() - 3 * DAY_MS, validDays: 1 });
    expect((await refusal(expired)).code).toBe('SS_UNAVAILABLE');
  });

  it('refuses a certificate that is not yet valid at the handshake', async () => {
    // notBefore = now + 2 days − 5 minutes of backdating (forge-pki.ts BACKDATE_MS).
    const early = ca.issueHost(VAULT, 'hv-a', { now: Date.now() + 2 * DAY_MS, validDays: 1 });
    expect((await refusal(early)).code).toBe('SS_UNAVAILABLE');
  });

  it('refuses a valid host of another vault with the same name', async () => {
    const v2 = createTestIntermediateCa(ca, 'v2');
    const e = await refusal(v2.issueHost('v2', 'hv-a'));
    expect(e.code).toBe('SS_NOT_PAIRED');
    expect(e.message).toContain('secondsite://v2/host/hv-a');
  });

  it('refuses a valid host of the vault that is not paired with the VM', async () => {
    const e = await refusal(ca.issueHost(VAULT, 'hv-c'));
    expect(e.code).toBe('SS_NOT_PAIRED');
    expect(e.message).toContain('secondsite://v1/host/hv-c');
  });
});
