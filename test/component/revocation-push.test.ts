/**
 * Revocation pushed from the coordinator (issue #7, item 6): a real coordinator, a provider and
 * two enrolled host agents over real sockets (relay-lab.ts, on 127.0.5.1 and 127.0.6.1), once
 * with a certificate policy (8084) and once with a kerberos policy (8083).
 *
 *  1. app1 replicates hv-a → hv-b; a probe with hv-a's credentials (its certificate, or a
 *     ticket issued now) gets hv-b's Status: the positive control.
 *  2. `secondsite host revoke --host VMM-Relay/hv-a` (the CLI, a real process) stores version 1
 *     and both hosts get the list; again: nothing changes; an unknown host or vault: exit 2
 *     naming the flag. Certificate run: hv-b is offline during the revoke and catches up when
 *     it reconnects (the coordinator sends the list again on its report).
 *  3. hv-a writes and cuts a point: hv-b refuses the ship with SS_REVOKED, hv-a's sender stops
 *     with that error instead of retrying; hv-b's points and replica bytes stay as they were;
 *     the probe is refused with SS_REVOKED on the same port; kerberos run: the ticket service
 *     grants no ticket to hv-a nor for it (SS_REVOKED).
 *  4. hv-b restarts: it reloads revoked.json (the push's command id is already in its command
 *     log, so only the file can give it the list) and still refuses the probe.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { RevocationList } from '../../agent/common/revocation.ts';
import { loadTls } from '../../agent/host/replication/replication-host.ts';
import { createReplicationClient } from '../../agent/host/transport/replication-client.ts';
import { ticketChannelCredentials } from '../../agent/host/transport/ticket-credentials.ts';
import type { StartedProvider } from '../../agent/provider/main.ts';
import { hostIdentity } from '../../certs/identity.ts';
import type { ApiClient, RevocationView } from '../../common/api-client/index.ts';
import { isSecondsiteError } from '../../common/errors/errors.ts';
import { silentLogger } from '../../common/log/log.ts';
import { systemClock } from '../../common/time/clock.ts';
import type { ProviderLab } from '../helpers/provider-lab.ts';
import {
  RELAY_SITE,
  cutAndShip,
  imagesIdentical,
  nbdOfVm,
  pointToFile,
  qemuIoFlushed,
  reportOf,
  reportedVm,
  startLinkedHost,
  startRelayLab,
  stopRelayLab,
  vmRunning,
  type LinkedHost,
  protectThroughApi,
} from '../helpers/relay-lab.ts';
import { jsonOf, runCli } from '../helpers/secondsite-cli.ts';
import { waitFor } from '../helpers/wait-for.ts';

const VM = 'app1';
const SERVER = 'VMM-Relay';
const IPS = { a: '127.0.5.1', b: '127.0.6.1' };
const A_URI = 'secondsite://prod/host/hv-a';
const B_URI = 'secondsite://prod/host/hv-b';

function siteWithTargetStorage(lab: ProviderLab): string {
  const site = structuredClone(RELAY_SITE);
  site.storageClassifications.push({
    name: 'GOLD-B',
    locations: [{ host: 'hv-b', path: lab.path('b-gold') }],
  });
  const path = lab.path('revocation-site.json');
  writeFileSync(path, JSON.stringify(site, null, 2));
  return path;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (isSecondsiteError(e)) return e.code;
    throw e;
  }
}

describe.each([
  { auth: 'certificate' as const, port: 'cert' as const, offlineDuringRevoke: true },
  { auth: 'kerberos' as const, port: 'ticket' as const, offlineDuringRevoke: false },
])('revocation over the $auth port', ({ auth, port, offlineDuringRevoke }) => {
  let lab: ProviderLab;
  let api: ApiClient;
  let adminFile: string;
  let provider: StartedProvider;
  let a: LinkedHost;
  let b: LinkedHost;
  /** hv-b's points once it holds the list, and its copy at the newest of them. */
  let before: { points: string[]; file: string };
  /** A Status call to hv-b's `port` as hv-a; its outcome code. */
  let probe: () => Promise<string>;

  const cli = (...args: string[]) => runCli([...args, '--config', adminFile]);
  const revokedVersion = (host: string) => reportOf(provider, host).inventory.revokedVersion;
  const pointIds = async () => (await b.agent.replication.points(VM)).map((p) => p.id);

  beforeAll(async () => {
    ({ lab, api, adminFile, provider, a, b } = await startRelayLab(siteWithTargetStorage, IPS));
  });

  afterAll(() => stopRelayLab(lab, a, b));

  it(`1. app1 replicates hv-a → hv-b over the ${port} port; hv-a's probe is answered`, async () => {
    await vmRunning(provider, 'hv-a', VM);
    await qemuIoFlushed(nbdOfVm(a, VM), 'write -P 0xab 0 1M', 'write -P 0x3c 9M 256k');
    await protectThroughApi(api, {
      server: SERVER,
      vm: VM,
      policy: 'p',
      auth,
      copyFrequency: '15m',
      timeoutMs: 90_000,
    });
    await waitFor(() => reportedVm(provider, 'hv-a', VM)?.replication?.baseline === 'copied', {
      what: 'the initial copy',
      timeoutMs: 90_000,
    });
    await qemuIoFlushed(nbdOfVm(a, VM), 'write -P 0x5d 4M 512k');
    const point = await cutAndShip(provider, a, VM, { timeoutMs: 60_000 });
    const shipped = await pointToFile(b, VM, point.id, lab.path('shipped.raw'));
    expect(await imagesIdentical(shipped, nbdOfVm(a, VM))).toBe(true);

    // The probe: hv-a's certificate, or a ticket for hv-b issued while hv-a is not revoked.
    const bPort = reportOf(provider, 'hv-b')[port === 'cert' ? 'certPort' : 'ticketPort'];
    const creds =
      port === 'ticket'
        ? await a.agent.tickets!.credentials({ peerHost: 'hv-b', peerUri: B_URI, vm: VM, epoch: 1 })
        : undefined;
    probe = async () => {
      const client = createReplicationClient({
        target: `${IPS.b}:${bPort}`,
        expectedPeer: hostIdentity('prod', 'hv-b'),
        tls: loadTls(join(a.data, 'identity'))!,
        ...(creds
          ? {
              credentials: ticketChannelCredentials({
                expectedPeer: B_URI,
                clock: systemClock,
                credentials: async () => creds,
              }),
            }
          : {}),
        log: silentLogger,
      });
      try {
        return await codeOf(client.status({ vmId: VM, epoch: 1, deadlineMs: 20_000 }));
      } finally {
        client.close();
      }
    };
    expect(await probe()).toBe('ok');
  });

  it('2. `host revoke` stores version 1, idempotently, and every host gets the list', async () => {
    if (offlineDuringRevoke) {
      await b.disconnect();
      await waitFor(() => reportOf(provider, 'hv-b').connected === false, {
        what: 'hv-b disconnected',
      });
    }
    const r = await cli('host', 'revoke', '--vault', 'prod', '--host', `${SERVER}/hv-a`, '--json');
    expect(r.code, r.stderr).toBe(0);
    const view = jsonOf<RevocationView>(r);
    expect(view).toMatchObject({ identity: A_URI, changed: true, version: 1, identities: [A_URI] });
    const pushed = Object.fromEntries(view.hosts.map((h) => [h.host, h.applied]));
    expect(pushed).toEqual({
      [`${SERVER}/hv-a`]: true,
      [`${SERVER}/hv-b`]: !offlineDuringRevoke,
    });

    const again = jsonOf<RevocationView>(
      await cli('host', 'revoke', '--vault', 'prod', '--host', `${SERVER}/hv-a`, '--json'),
    );
    expect([again.changed, again.version]).toEqual([false, 1]);
    const noHost = await cli('host', 'revoke', '--vault', 'prod', '--host', `${SERVER}/hv-x`);
    expect([noHost.code, noHost.stderr]).toEqual([2, expect.stringContaining('--host')]);
    const noVault = await cli('host', 'revoke', '--vault', 'nope', '--host', `${SERVER}/hv-a`);
    expect([noVault.code, noVault.stderr]).toEqual([2, expect.stringContaining('--vault')]);

    if (offlineDuringRevoke) {
      expect(new RevocationList(join(b.data, 'revoked.json')).current().version).toBe(0);
      await b.connect();
    }
    for (const h of ['hv-a', 'hv-b']) {
      await waitFor(() => revokedVersion(h) === '1', { what: `${h} holding list version 1` });
    }
    // What hv-b holds once it refuses hv-a (taken now: a cycle may have shipped before).
    const points = await pointIds();
    before = { points, file: await pointToFile(b, VM, points.at(-1)!, lab.path('before.raw')) };
  });

  it("3. hv-b refuses hv-a's next ship with SS_REVOKED; its points and bytes stay", async () => {
    await qemuIoFlushed(nbdOfVm(a, VM), 'write -P 0xee 0 2M');
    await a.agent.vms.cut(VM, 'crash-consistent');
    const r = await waitFor(
      () => {
        const rep = reportedVm(provider, 'hv-a', VM)?.replication;
        return rep?.lastError.startsWith('SS_REVOKED') ? rep : undefined;
      },
      { what: "hv-a's sender refused with SS_REVOKED", timeoutMs: 60_000 },
    );
    // Stopped with a clear error rather than retrying (backoff.ts: SS_REVOKED stops).
    expect(r.state).toBe('stopped');
    expect(await probe()).toBe('SS_REVOKED');
    if (port === 'ticket') {
      // The ticket service grants nothing to hv-a (a request its cache cannot answer) nor for it.
      const ask = (h: LinkedHost, peerHost: string, peerUri: string, epoch: number) =>
        codeOf(h.agent.tickets!.credentials({ peerHost, peerUri, vm: VM, epoch }));
      expect(await ask(a, 'hv-b', B_URI, 2)).toBe('SS_REVOKED');
      expect(await ask(b, 'hv-a', A_URI, 1)).toBe('SS_REVOKED');
    }
    expect(await pointIds()).toEqual(before.points);
    const now = await pointToFile(b, VM, before.points.at(-1)!, lab.path('after.raw'));
    expect(await imagesIdentical(now, before.file)).toBe(true);
    expect(await imagesIdentical(now, nbdOfVm(a, VM))).toBe(false);
  });

  it('4. a restarted hv-b reloads revoked.json and keeps refusing', async () => {
    const ports = reportOf(provider, 'hv-b');
    await b.stop();
    const file = join(b.data, 'revoked.json');
    expect(new RevocationList(file).current()).toEqual({
      version: 1,
      identities: [A_URI],
      fingerprints: [],
    });
    b = await startLinkedHost(lab, provider, 'hv-b', IPS.b, ports.certPort, ports.ticketPort);
    expect(b.agent.ops.revoked?.current().version).toBe(1);
    expect(await probe()).toBe('SS_REVOKED');
    expect(await pointIds()).toEqual(before.points);
  });
});
