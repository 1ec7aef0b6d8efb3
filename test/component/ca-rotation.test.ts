/**
 * The provider's CA rotates (prepared → active → old) on a real coordinator and provider
 * (in-process, HTTPS/WebSocket and gRPC over TLS on port 0), with provider CAs that live
 * LIFE_MS instead of a year. The provider registered at t0, so its first CA's issued life is
 * [t0, t0 + LIFE]: prepared at 1/2, active at 5/6, old until its end.
 *
 * Time: TLS checks certificates against the wall clock, so the old CA's end is waited for in
 * real time (LIFE after t0). Its half-life and 5/6 are not: the coordinator and the provider
 * run on one LeapClock that the test moves to each of them (and just short of each first,
 * where nothing may happen); the clock then stands there until the wall clock catches up, so
 * the provider stays in the overlap (old and new both valid, the new one signing) from the
 * leap to 5/6 until the old CA's real end, when it retires the old CA by the clock TLS uses.
 * The coordinator dates the successor by it too: issued at the half-life, it ends LIFE/2
 * after the old CA, as it would without the leaps (the 5-minute backdate keeps it valid by
 * the wall clock at once).
 *
 * 1. Host A enrols (leaf of the first CA) and keeps its control stream; it does not renew.
 * 2. Prepared: the provider has a successor signed by the coordinator over its channel and
 *    pushes {root, old, new}; host A pins both (host.json, ca.pem). Negative step: successors
 *    of another vault, of another provider and of another root are refused, pins unchanged.
 * 3. Active: the successor signs. The join token names it; host B enrols with a leaf of the
 *    NEW CA. Host A's pins follow: a new connection to the provider, whose server certificate
 *    is now the successor's, is accepted with the pins and refused with the enrolment pin.
 * 4. Overlap: A (old leaf) and B (new leaf) replicate to each other over mutual TLS; the
 *    replica's bytes equal the primary's.
 * 5. Old: after the old CA's end its leaf is refused at the handshake, B's still serves; the
 *    provider promoted the successor (whose own half-life is now: the next cycle may have
 *    begun), and host A's pin of the old CA has lapsed.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIntermediateCa } from '../../certs/ca.ts';
import { createKeyAndCsr } from '../../certs/csr.ts';
import { formatIdentity, parseIdentity, type Identity } from '../../certs/identity.ts';
import { certFacts, fingerprintOfPem } from '../../certs/inspect.ts';
import { certificatesOf } from '../../certs/trust-bundle.ts';
import { silentLogger } from '../../common/log/log.ts';
import { LeapClock, systemClock } from '../../common/time/clock.ts';
import { ensureEnrolled } from '../../agent/host/enrolment/enrol.ts';
import {
  createHostCredentials,
  type HostCredentials,
} from '../../agent/host/enrolment/host-credentials.ts';
import { identityDir, type HostIdentity } from '../../agent/host/enrolment/host-identity.ts';
import { createProviderClient } from '../../agent/host/enrolment/provider-client.ts';
import { createProviderLink } from '../../agent/host/enrolment/provider-link.ts';
import { readCoalescedSegment } from '../../agent/host/journal/segment-coalesce.ts';
import {
  createReplicationClient,
  type ReplicationClient,
} from '../../agent/host/transport/replication-client.ts';
import {
  createReplicationServer,
  type ReplicationServer,
} from '../../agent/host/transport/replication-server.ts';
import type { TlsMaterial } from '../../agent/host/transport/rotating-tls.ts';
import { createVmManager } from '../../agent/host/vm/vm-manager.ts';
import type { StartedProvider } from '../../agent/provider/main.ts';
import { ProviderLab } from '../helpers/provider-lab.ts';
import { seededRandom } from '../helpers/seeded-random.ts';
import {
  fileBytes,
  guestWrites,
  makeImage,
  openReplica,
  openSource,
  sourceBytes,
} from '../helpers/sync-lab.ts';
import { createTestCa, hostIdentity, providerIdentity } from '../helpers/test-ca.ts';
import { waitFor } from '../helpers/wait-for.ts';

/**
 * The test's real length: the old CA's end is waited for. Everything from the provider's
 * registration to the end of the overlap step (two enrolments, a successor, two replications,
 * two looks short of a step: ~7 s alone on the machine) must fit before it; 45 s leaves a
 * loaded machine six times that.
 */
const LIFE_MS = 45_000;
/** How long the provider is given, at a moment just short of a step, to take it wrongly. */
const SHORT_OF_STEP_MS = 1_000;
const CHECK_EVERY_MS = 100;
const VM = 'vm-1';
const SIZE = 4 << 20;
const SEED = Number(process.env['SEED'] ?? Date.now() % 1e9);
console.log(`ca-rotation: SEED=${SEED}`);

let lab: ProviderLab;
let rootPem: string;
let rootKeyPem: string;
let ny: StartedProvider;
let providerName: string;
let idA: HostIdentity;
let credsA: HostCredentials;
let oldFp: string;
let newFp: string;
let oldEnd: number;
/** The coordinator's and the provider's time (see the file comment). */
const clock = new LeapClock();
const stops: Array<() => Promise<void> | void> = [];

const target = (): string => `127.0.0.1:${ny.agent.hosts.port}`;
const tokenFile = (): string => join(ny.dataDir, 'host-join-token');
const issuerOf = (chainPem: string): string => fingerprintOfPem(certificatesOf(chainPem)[1]!);

function enrol(name: string): Promise<HostIdentity> {
  return ensureEnrolled({
    dataDir: lab.path(name),
    name,
    provider: target(),
    tokenFile: tokenFile(),
    address: '127.0.0.1',
    now: () => Date.now(),
    log: silentLogger,
  });
}

beforeAll(async () => {
  lab = new ProviderLab();
  const c = await lab.coordinator(undefined, { providerCaLifetimeMs: LIFE_MS, clock });
  rootPem = c.caCertPem;
  rootKeyPem = readFileSync(join(lab.path('coordinator'), 'pki', 'ca.key'), 'utf8');
  await c.api.createVault('prod');
  ny = await lab.provider(
    { data: lab.path('ny'), key: await lab.key(c.api, 'prod') },
    { caRotation: { checkEveryMs: CHECK_EVERY_MS }, clock },
  );
  providerName = (parseIdentity(ny.agent.identity.info.identity) as { name: string }).name;
  oldFp = fingerprintOfPem(ny.agent.ca.signing().certPem);
  oldEnd = certFacts(ny.agent.ca.signing().certPem).notAfter;
  expect(oldEnd).toBeLessThanOrEqual(Date.now() + LIFE_MS); // the injected life, not a year
  // Step 1: host A, with its control stream and the same credentials main.ts builds.
  idA = await enrol('ny-hv1');
  credsA = createHostCredentials({
    dataDir: lab.path('ny-hv1'),
    tlsDir: identityDir(lab.path('ny-hv1')),
    identity: idA,
    replicationTls: undefined,
    clock: systemClock,
    log: silentLogger,
  });
  const run = new AbortController();
  const vms = createVmManager({
    dataDir: lab.path('ny-hv1'),
    clock: systemClock,
    log: silentLogger,
    freezeTimeoutMs: 1000,
  });
  const vmsDone = vms.run(run.signal);
  const link = await createProviderLink({
    dataDir: lab.path('ny-hv1'),
    identity: idA,
    vms,
    version: 'test',
    log: silentLogger,
    tls: credsA.tls,
    trust: { pins: () => credsA.pins.fingerprints(), apply: (b) => credsA.trust(b) },
  });
  const linkDone = link.run(run.signal);
  stops.push(async () => {
    run.abort();
    await link.shutdown();
    await linkDone;
    await vmsDone;
    await vms.shutdown();
    credsA.close();
  });
  await waitFor(() => link.state() === 'connected', { what: 'host A control stream' });
}, 120_000);

afterAll(async () => {
  for (const s of stops.splice(0).reverse()) await s();
  await lab?.cleanup();
});

/** The old CA's half-life and 5/6, on its issued life [oldEnd - LIFE, oldEnd]. */
const halfLife = (): number => oldEnd - LIFE_MS / 2;
const fiveSixths = (): number => oldEnd - LIFE_MS / 6;

/**
 * Moves the provider to just short of a step and lets it look several times: nothing may
 * change yet (a negative step; a wait cannot make it pass wrongly, only a step taken early
 * can make it fail).
 */
async function shortOf(at: number, unchanged: () => void): Promise<void> {
  clock.leapTo(at - SHORT_OF_STEP_MS);
  const until = Date.now() + 5 * CHECK_EVERY_MS;
  await waitFor(() => Date.now() > until, { what: 'five CA checks', intervalMs: CHECK_EVERY_MS });
  unchanged();
}

function foreignCa(
  vault: string,
  holder: Identity,
  root = { certPem: rootPem, keyPem: rootKeyPem },
) {
  return createIntermediateCa({
    caCertPem: root.certPem,
    caKeyPem: root.keyPem,
    vault,
    identity: holder,
    commonName: `secondsite provider CA ${vault}/x`,
    notAfter: Date.now() + 10 * LIFE_MS,
    now: Date.now(),
  }).certPem;
}

describe('provider CA rotation', () => {
  it('prepared: the successor is pushed and host A pins {old, new}', async () => {
    expect(issuerOf(idA.certPem)).toBe(oldFp);
    expect(credsA.pins.fingerprints()).toEqual([oldFp]);
    await shortOf(halfLife(), () => {
      expect(certificatesOf(ny.agent.ca.bundle()).map((p) => fingerprintOfPem(p))).toEqual([
        fingerprintOfPem(rootPem),
        oldFp,
      ]);
      expect(existsSync(join(ny.dataDir, 'identity', 'next-ca.crt'))).toBe(false);
    });
    clock.leapTo(halfLife());
    const bundle = await waitFor(
      () => {
        const b = ny.agent.ca.bundle();
        return certificatesOf(b).length === 3 && b;
      },
      { what: 'a successor CA', timeoutMs: 30_000, intervalMs: CHECK_EVERY_MS },
    );
    newFp = fingerprintOfPem(certificatesOf(bundle)[2]!);
    expect(fingerprintOfPem(ny.agent.ca.signing().certPem)).toBe(oldFp); // not active yet
    expect(existsSync(join(ny.dataDir, 'identity', 'next-ca.crt'))).toBe(true);
    await waitFor(() => credsA.pins.fingerprints().includes(newFp), { what: 'host A pins' });
    expect(credsA.pins.fingerprints()).toEqual([oldFp, newFp]);
    const hostJson = JSON.parse(
      readFileSync(join(identityDir(lab.path('ny-hv1')), 'host.json'), 'utf8'),
    ) as { providerCaPins: { fingerprint: string }[] };
    expect(hostJson.providerCaPins.map((p) => p.fingerprint)).toEqual([oldFp, newFp]);
    const caPem = readFileSync(join(identityDir(lab.path('ny-hv1')), 'ca.pem'), 'utf8');
    expect(
      certificatesOf(caPem)
        .map((p) => fingerprintOfPem(p))
        .slice(1),
    ).toEqual([oldFp, newFp]);
  }, 60_000);

  it('refuses a successor of another vault, another provider or another root', async () => {
    const otherRoot = createTestCa();
    const cases: [string, string][] = [
      [foreignCa('test', providerIdentity('test', providerName)), 'other-vault'],
      [foreignCa('prod', providerIdentity('prod', 'chi')), 'other-provider'],
      [
        foreignCa('prod', providerIdentity('prod', providerName), {
          certPem: otherRoot.certPem,
          keyPem: otherRoot.keyPem,
        }),
        'not-chained',
      ],
    ];
    for (const [pem, reason] of cases) {
      await expect(credsA.trust(rootPem + pem), reason).rejects.toMatchObject({
        code: 'SS_CERT_INVALID',
        details: { reason },
      });
    }
    expect(credsA.pins.fingerprints()).toEqual([oldFp, newFp]);
  });

  let idB: HostIdentity;

  it('active: the successor signs; host B gets a new-CA leaf; A’s pins follow', async () => {
    await shortOf(fiveSixths(), () => {
      expect(fingerprintOfPem(ny.agent.ca.signing().certPem)).toBe(oldFp);
      expect(readFileSync(tokenFile(), 'utf8')).not.toContain(newFp);
    });
    clock.leapTo(fiveSixths());
    await waitFor(() => fingerprintOfPem(ny.agent.ca.signing().certPem) === newFp, {
      what: 'the successor active',
      timeoutMs: 30_000,
      intervalMs: CHECK_EVERY_MS,
    });
    await waitFor(() => readFileSync(tokenFile(), 'utf8').includes(newFp), {
      what: 'the join token naming the successor',
    });
    idB = await enrol('ny-hv2');
    expect(issuerOf(idB.certPem)).toBe(newFp);
    expect(issuerOf(idA.certPem)).toBe(oldFp);
    // A new connection of host A meets the successor's server certificate.
    const csr = createKeyAndCsr({ identity: hostIdentity('prod', 'ny-hv1') }).csrPem;
    const connect = (pin: string | (() => readonly string[])) =>
      createProviderClient({
        target: target(),
        rootCaPem: rootPem,
        provider: { vault: 'prod', intermediateFingerprint: pin },
        own: { keyPem: idA.keyPem, certPem: idA.certPem },
      });
    const pinned = connect(() => credsA.pins.fingerprints());
    const enrolmentPinOnly = connect(oldFp);
    try {
      await expect(pinned.renew(csr)).resolves.toMatchObject({
        intermediatePem: expect.any(String),
      });
      await expect(enrolmentPinOnly.renew(csr)).rejects.toBeDefined();
    } finally {
      pinned.close();
      enrolmentPinOnly.close();
    }
  }, 60_000);

  const servers: Record<string, { server: ReplicationServer; port: number }> = {};
  const clients: ReplicationClient[] = [];
  stops.push(async () => {
    for (const c of clients) c.close();
    for (const s of Object.values(servers)) await s.server.shutdown();
  });

  const materialOf = (id: HostIdentity, caPem = id.caPem): TlsMaterial => ({
    keyPem: id.keyPem,
    certPem: id.certPem,
    caPem,
  });

  function client(from: TlsMaterial, to: Identity, port: number): ReplicationClient {
    const c = createReplicationClient({
      target: `127.0.0.1:${port}`,
      expectedPeer: to,
      tls: from,
      log: silentLogger,
    });
    clients.push(c);
    return c;
  }

  /** Primary `from` ships a VM's journal to replica `to`; the replica must equal it. */
  async function replicate(
    from: { name: string; tls: TlsMaterial },
    to: { name: string; tls: TlsMaterial },
  ): Promise<void> {
    const dir = lab.path(`rep-${from.name}-${to.name}`);
    mkdirSync(dir, { recursive: true });
    const r = seededRandom(SEED + from.name.length);
    makeImage(join(dir, 'src0.img'), SIZE, 1 << 18, r, 1);
    const j = await openSource(dir, [SIZE]);
    const rep = await openReplica(dir, [SIZE]);
    stops.push(async () => {
      await rep.store.close();
      await j.close();
    });
    const server = createReplicationServer({
      address: '127.0.0.1',
      port: 0,
      tls: to.tls,
      authorize: (caller, vmId) =>
        vmId === VM &&
        [from.name, to.name].some((h) => caller.uri === formatIdentity(hostIdentity('prod', h))),
      handlers: {
        lastApplied: () => rep.store.lastApplied,
        newestPointId: () => rep.store.latest()?.id ?? '',
        applySegment: (_ctx, seg) => rep.store.apply(seg),
      },
      log: silentLogger,
    });
    servers[to.name] = { server, port: await server.listen() };
    await guestWrites(j, [SIZE], r, 40);
    const last = await j.cut({ type: 'crash-consistent' });
    const c = client(from.tls, hostIdentity('prod', to.name), servers[to.name]!.port);
    const stream = await c.openShipStream({ vmId: VM, epoch: 1 });
    for (const s of j.sealedSegments()) {
      const seg = readCoalescedSegment(s.path);
      await stream.ship({ vmId: VM, seq: s.seq, point: seg.point, extents: seg.extents });
      await j.markShipped(s.seq);
    }
    await stream.close();
    expect(rep.store.latest()?.id).toBe(last.id);
    expect(fileBytes(rep.paths[0]!).equals(await sourceBytes(j, 0, SIZE))).toBe(true);
  }

  it('overlap: A (old-CA leaf) and B (new-CA leaf) replicate to each other', async () => {
    const a = { name: 'ny-hv1', tls: materialOf(idA, credsA.pins.bundle()) };
    const b = { name: 'ny-hv2', tls: materialOf(idB) };
    await replicate(a, b);
    await replicate(b, a);
    // The old CA was still valid throughout, so both leaves were in their overlap; and the
    // provider was in it too: the successor signing, the old CA still in the bundle.
    expect(Date.now()).toBeLessThan(oldEnd);
    expect(fingerprintOfPem(ny.agent.ca.signing().certPem)).toBe(newFp);
    expect(certificatesOf(ny.agent.ca.bundle()).map((p) => fingerprintOfPem(p))).toContain(oldFp);
  }, 60_000);

  it(
    'old: after the old CA’s end its leaf is refused; the successor is promoted',
    async () => {
      await waitFor(() => Date.now() > oldEnd + 1_000, {
        what: 'the old CA’s end',
        timeoutMs: LIFE_MS + 30_000,
        intervalMs: 250,
      });
      const portB = servers['ny-hv2']!.port;
      const oldLeaf = client(
        materialOf(idA, credsA.pins.bundle()),
        hostIdentity('prod', 'ny-hv2'),
        portB,
      );
      await expect(
        oldLeaf.status({ vmId: VM, epoch: 1, deadlineMs: 10_000 }),
      ).rejects.toMatchObject({
        code: 'SS_UNAVAILABLE',
      });
      const newLeaf = client(materialOf(idB), hostIdentity('prod', 'ny-hv2'), portB);
      await expect(
        newLeaf.status({ vmId: VM, epoch: 1, deadlineMs: 10_000 }),
      ).resolves.toBeDefined();
      // The successor is the CA now. Its own half-life is the old CA's end (same life), so
      // its successor may already be prepared: the bundle is {root, new[, next]}.
      await waitFor(
        () => !certificatesOf(ny.agent.ca.bundle()).some((p) => fingerprintOfPem(p) === oldFp),
        { what: 'the old CA out of the bundle' },
      );
      expect(certificatesOf(ny.agent.ca.bundle()).map((p) => fingerprintOfPem(p))[1]).toBe(newFp);
      expect(fingerprintOfPem(readFileSync(join(ny.dataDir, 'identity', 'ca.crt'), 'utf8'))).toBe(
        newFp,
      );
      expect(credsA.pins.fingerprints()).not.toContain(oldFp);
      expect(credsA.pins.fingerprints()[0]).toBe(newFp);
    },
    LIFE_MS + 30_000,
  );
});
