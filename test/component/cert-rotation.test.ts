/**
 * Host certificate renewal at half-life without a restart, over real gRPC mutual TLS:
 *
 * 1. A test CA (the provider's signer) issues the replica host hv-b a short-lived certificate
 *    whose half-life is 5 s away (about 10 min of life: the signer backdates every
 *    certificate by 5 min, forge-pki.ts BACKDATE_MS, so it cannot be shorter); hv-b serves the replication port on 127.0.0.1:0 from a
 *    RotatingTls. Sender hv-a opens a ship stream and ships segment 1.
 * 2. hv-b's renewer (cert-renewer.ts, real clock) wakes at half-life, makes a new key + CSR,
 *    and asks the "provider", whose first answer fails (SS_UNAVAILABLE): it backs off, asks
 *    again, checks the answer, installs the files (key 0600, no staging file left) and swaps
 *    the server's material.
 * 3. The server kept its port; a new TLS connection is served the NEW certificate (its
 *    fingerprint, read by the client); the stream opened before the swap ships segment 2; a
 *    new client ships segment 3; the bytes that arrived equal the bytes sent.
 * 4. Client side: hv-a's RotatingTls takes a new certificate; a new connection presents it
 *    (the server's authorise step sees its fingerprint).
 * Negative step: a renewal answered with a certificate for another host is refused, counted
 * as a failure, and the installed files stay as they were.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyAndCsr } from '../../certs/csr.ts';
import { formatIdentity } from '../../certs/identity.ts';
import { fingerprintOfPem } from '../../certs/inspect.ts';
import { fingerprintOfPeerCertificate } from '../../certs/peer.ts';
import { signCsr } from '../../certs/sign.ts';
import { SecondsiteError } from '../../common/errors/errors.ts';
import { silentLogger } from '../../common/log/log.ts';
import { systemClock } from '../../common/time/clock.ts';
import { createCertRenewer, type CertRenewer } from '../../agent/host/enrolment/cert-renewer.ts';
import type { HostIdentity } from '../../agent/host/enrolment/host-identity.ts';
import {
  createReplicationClient,
  type ReplicationClient,
} from '../../agent/host/transport/replication-client.ts';
import {
  createReplicationServer,
  type ReplicationServer,
} from '../../agent/host/transport/replication-server.ts';
import { RotatingTls, type TlsMaterial } from '../../agent/host/transport/rotating-tls.ts';
import { FakeReplicaSink } from '../fakes/fake-replica-sink.ts';
import { makeSegment, materialize } from '../helpers/replication-data.ts';
import { createTestCa, hostIdentity, type IssuedCert, type TestCa } from '../helpers/test-ca.ts';
import { waitFor } from '../helpers/wait-for.ts';

const VAULT = 'v1';
const SERVER = hostIdentity(VAULT, 'hv-b');
const SENDER = hostIdentity(VAULT, 'hv-a');
const VM = 'vm-1';
const SCHEDULE = { checkEveryMs: 1_000, retryInitialMs: 300, retryMaxMs: 2_000 };

let ca: TestCa;
let dir: string;
let server: ReplicationServer;
let port: number;
let serverTls: RotatingTls;
let sink: FakeReplicaSink;
let original: IssuedCert;
const callerFingerprints: string[] = [];
const clients: ReplicationClient[] = [];
const renewers: CertRenewer[] = [];
const stop = new AbortController();

const material = (c: IssuedCert): TlsMaterial => ({
  caPem: ca.rootCertPem,
  certPem: c.chainPem,
  keyPem: c.keyPem,
});

function identityOf(c: IssuedCert, name: string): HostIdentity {
  return {
    info: {
      vault: VAULT,
      name,
      identity: formatIdentity(hostIdentity(VAULT, name)),
      server: 'test',
      provider: '127.0.0.1:1',
      providerCaFingerprint: ca.fingerprint,
      enrolledAt: new Date().toISOString(),
    },
    ...material(c),
  };
}

/** What the provider's Renew does (renew.ts), signed by the test CA for `as`. */
function signAs(as: typeof SERVER, csrPem: string) {
  const certPem = signCsr({
    caCertPem: ca.certPem,
    caKeyPem: ca.keyPem,
    csrPem,
    identity: as,
    validDays: 1,
    now: Date.now(),
    usage: 'both',
    ipAddresses: ['127.0.0.1'],
  });
  return { certPem, intermediatePem: '', caBundlePem: ca.rootCertPem };
}

/** The fingerprint of the certificate the server presents to a new TLS connection. */
function servedFingerprint(as: IssuedCert): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({
      host: '127.0.0.1',
      port,
      ca: ca.rootCertPem,
      key: as.keyPem,
      cert: as.chainPem,
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
    });
    s.once('error', reject);
    s.once('secureConnect', () => {
      resolve(fingerprintOfPeerCertificate(s.getPeerCertificate()));
      s.end();
    });
  });
}

function clientWith(tls: RotatingTls | TlsMaterial): ReplicationClient {
  const c = createReplicationClient({
    target: `127.0.0.1:${port}`,
    expectedPeer: SERVER,
    tls,
    log: silentLogger,
  });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  ca = createTestCa();
  dir = mkdtempSync(join(tmpdir(), 'ss-rot-'));
  // Valid from 5 min back (the signer's backdating) to 310 s ahead: half-life in 5 s.
  const start = Date.now();
  original = ca.issue(SERVER, { now: start, notAfter: start + 310_000 });
  serverTls = new RotatingTls(material(original));
  sink = new FakeReplicaSink();
  server = createReplicationServer({
    address: '127.0.0.1',
    port: 0,
    tls: serverTls,
    authorize: (caller, vmId) => {
      callerFingerprints.push(caller.fingerprint);
      return vmId === VM && caller.uri === formatIdentity(SENDER);
    },
    handlers: sink,
    log: silentLogger,
  });
  port = await server.listen();
});

afterAll(async () => {
  stop.abort();
  for (const r of renewers) await r.shutdown();
  for (const c of clients) c.close();
  await server?.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

describe('host certificate renewal', () => {
  it('renews at half-life, retries a failure, and serves the new certificate on the same port', async () => {
    const sender = ca.issue(SENDER);
    const stream = await clientWith(material(sender)).openShipStream({ vmId: VM, epoch: 1 });
    const sent = [makeSegment(VM, 1, 1), makeSegment(VM, 2, 2), makeSegment(VM, 3, 3)];
    expect(await stream.ship(sent[0]!)).toMatchObject({ seq: 1, outcome: 'applied' });
    expect(await servedFingerprint(sender)).toBe(fingerprintOfPem(original.certPem));

    let asked = 0;
    const renewer = createCertRenewer({
      dataDir: dir,
      identity: identityOf(original, 'hv-b'),
      renew: async (csrPem) => {
        asked++;
        if (asked === 1) throw new SecondsiteError('SS_UNAVAILABLE', 'provider restarting');
        return signAs(SERVER, csrPem);
      },
      onRenewed: (id) => serverTls.update(id),
      clock: systemClock,
      log: silentLogger,
      schedule: SCHEDULE,
    });
    renewers.push(renewer);
    void renewer.run(stop.signal);
    expect(renewer.status()).toMatchObject({ state: 'waiting', failures: 0 });
    // Not before half-life: the certificate is checked, not renewed, until then.
    expect(asked).toBe(0);

    await waitFor(() => asked >= 2 && renewer.status().state === 'waiting', {
      what: 'a renewal after one failure',
    });
    const renewed = renewer.current();
    expect(renewed.certPem).not.toBe(original.certPem);
    expect(renewed.keyPem).not.toBe(original.keyPem);
    expect(renewer.status().renewAt).toBeGreaterThan(Date.now());
    // Installed as one step: key 0600, files equal the new material, no staging file.
    const idDir = join(dir, 'identity');
    expect(statSync(join(idDir, 'key.pem')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(idDir, 'key.pem'), 'utf8')).toBe(renewed.keyPem);
    expect(readFileSync(join(idDir, 'cert.pem'), 'utf8')).toBe(renewed.certPem);
    expect(existsSync(join(idDir, 'renewed.json'))).toBe(false);

    // Same port, no restart: a new connection is served the new certificate.
    expect(await server.listen()).toBe(port);
    expect(await servedFingerprint(sender)).toBe(fingerprintOfPem(renewed.certPem));
    // The stream opened before the swap goes on; a new client (new connection) ships too.
    expect(await stream.ship(sent[1]!)).toMatchObject({ seq: 2, outcome: 'applied' });
    await stream.close();
    const fresh = await clientWith(material(sender)).openShipStream({ vmId: VM, epoch: 1 });
    expect(await fresh.ship(sent[2]!)).toMatchObject({ seq: 3, outcome: 'applied' });
    await fresh.close();
    const got = sink.applied.get(VM)!;
    expect(got.map((s) => s.seq)).toEqual([1, 2, 3]);
    const replica = materialize(got.flatMap((s) => s.extents));
    const primary = materialize(sent.flatMap((s) => s.extents));
    expect(replica.every((d, k) => d.equals(primary[k]!))).toBe(true);
  });

  it('a client presents its renewed certificate on new connections', async () => {
    const first = ca.issue(SENDER);
    const clientTls = new RotatingTls(material(first));
    const before = await clientWith(clientTls).status({ vmId: VM, epoch: 1 });
    expect(before.lastApplied).toBe(3);
    expect(callerFingerprints.at(-1)).toBe(fingerprintOfPem(first.certPem));
    const second = ca.issue(SENDER);
    clientTls.update(material(second));
    await clientWith(clientTls).status({ vmId: VM, epoch: 1 });
    expect(callerFingerprints.at(-1)).toBe(fingerprintOfPem(second.certPem));
  });

  it('refuses an answer for another identity and keeps the installed files', async () => {
    const sub = mkdtempSync(join(dir, 'neg-'));
    // Past its half-life already (valid from 5 min back to 100 s ahead).
    const start = Date.now();
    const cert = ca.issue(SERVER, { now: start, notAfter: start + 100_000 });
    const renewer = createCertRenewer({
      dataDir: sub,
      identity: identityOf(cert, 'hv-b'),
      // A provider that answers with another host's certificate (and key).
      renew: async () =>
        signAs(
          hostIdentity(VAULT, 'hv-c'),
          createKeyAndCsr({ identity: hostIdentity(VAULT, 'hv-c') }).csrPem,
        ),
      onRenewed: () => {
        throw new Error('must not be called');
      },
      clock: systemClock,
      log: silentLogger,
      schedule: SCHEDULE,
    });
    renewers.push(renewer);
    void renewer.run(stop.signal);
    const st = await waitFor(() => renewer.status().failures >= 2 && renewer.status(), {
      what: 'two refused renewals',
    });
    expect(st.lastError).toMatch(/^SS_CERT_INVALID: /);
    expect(st.state).toBe('backoff');
    expect(renewer.current().certPem).toBe(cert.chainPem);
    expect(existsSync(join(sub, 'identity', 'key.pem'))).toBe(false);
  });
});
