/**
 * The ticket service end to end (issue 7, second half): a real coordinator, a provider and two
 * enrolled host agents in-process over real sockets (relay-lab.ts).
 *
 *  1. Each host makes its long-term key at enrolment (0600, with its replay file) and
 *     registers it with the coordinator over its control stream and the provider's channel.
 *  2. A policy with auth "kerberos" protects app1 (hv-a → hv-b) through the API: the
 *     pair-primary command names hv-b's ticket port and ticket auth; hv-a's sender gets tickets
 *     from the coordinator and replicates over 8083; hv-b's replica at a recovery point equals
 *     hv-a's disk byte for byte.
 * Negative steps: a ticket asked for a peer the host is not paired with, for a VM that is not
 * an item, and under another epoch: refused by the coordinator (SS_NOT_PAIRED); a ticket the
 * coordinator issued for hv-b, presented at hv-a's 8083: refused (wrong-service).
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartedProvider } from '../../agent/provider/main.ts';
import { readPairing } from '../../agent/host/replication/pairing.ts';
import { connectTicketChannel } from '../../agent/host/transport/ticket-credentials.ts';
import { layout } from '../../agent/host/vm/layout.ts';
import type { ApiClient } from '../../common/api-client/index.ts';
import { isSecondsiteError, type SecondsiteError } from '../../common/errors/errors.ts';
import type { ProviderLab } from '../helpers/provider-lab.ts';
import {
  RELAY_SITE,
  compareImages,
  cutAndShip,
  nbdOfVm,
  pointToFile,
  qemuIoFlushed,
  reportOf,
  reportedVm,
  startRelayLab,
  stopRelayLab,
  vmRunning,
  type LinkedHost,
  protectThroughApi,
} from '../helpers/relay-lab.ts';
import { waitFor } from '../helpers/wait-for.ts';

const VM = 'app1';
const SERVER = 'VMM-Relay';

let lab: ProviderLab;
let api: ApiClient;
let provider: StartedProvider;
let a: LinkedHost;
let b: LinkedHost;

const qemuIo = (...cmds: string[]): Promise<void> => qemuIoFlushed(nbdOfVm(a, VM), ...cmds);

async function refusalOf(p: Promise<unknown>): Promise<SecondsiteError> {
  try {
    await p;
  } catch (e) {
    if (isSecondsiteError(e)) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

const keysFile = (h: LinkedHost) => join(h.data, 'tickets', 'keys.json');
const registered = (h: LinkedHost): number =>
  (JSON.parse(readFileSync(keysFile(h), 'utf8')) as { registered: number }).registered;

/** The relay site plus a storage classification at hv-b, so placement finds a location. */
function siteWithTargetStorage(lab: ProviderLab): string {
  const site = structuredClone(RELAY_SITE);
  site.storageClassifications.push({
    name: 'GOLD-B',
    locations: [{ host: 'hv-b', path: lab.path('b-gold') }],
  });
  const path = lab.path('ticket-site.json');
  writeFileSync(path, JSON.stringify(site, null, 2));
  return path;
}

beforeAll(async () => {
  ({ lab, api, provider, a, b } = await startRelayLab(siteWithTargetStorage));
});

afterAll(() => stopRelayLab(lab, a, b));

describe('the ticket service', () => {
  it('1. each host makes its long-term key (0600) and registers it once', async () => {
    for (const h of [a, b]) {
      expect(statSync(keysFile(h)).mode & 0o777).toBe(0o600);
      expect(statSync(join(h.data, 'tickets', 'replay')).mode & 0o777).toBe(0o600);
      await waitFor(() => registered(h) === 1, { what: `${h.name}'s key registered` });
    }
    expect(reportOf(provider, 'hv-b').ticketPort).toBeGreaterThan(0);
  });

  it('2. a kerberos policy replicates app1 over 8083 with issued tickets, bit-exact', async () => {
    await vmRunning(provider, 'hv-a', VM);
    await qemuIo('write -P 0xab 0 1M', 'write -P 0x3c 9M 256k');
    await protectThroughApi(api, {
      server: SERVER,
      vm: VM,
      policy: 'krb',
      auth: 'kerberos',
      copyFrequency: '30s',
      timeoutMs: 60_000,
    });
    const pairing = await waitFor(() => readPairing(layout.vmDir(a.data, VM)) ?? undefined, {
      what: 'app1 paired on hv-a',
      timeoutMs: 60_000,
    });
    expect(pairing).toMatchObject({ ticketAuth: true, peerHost: 'hv-b' });
    expect(pairing.peerAddress).toBe(`127.0.2.1:${reportOf(provider, 'hv-b').ticketPort}`);
    await waitFor(() => reportedVm(provider, 'hv-a', VM)?.replication?.baseline === 'copied', {
      what: 'the initial copy over 8083',
      timeoutMs: 60_000,
    });
    await qemuIo('write -P 0x5d 4M 512k');
    const point = await cutAndShip(provider, a, VM);
    const out = await pointToFile(b, VM, point.id, lab.path('read.raw'));
    const cmp = await compareImages(out, nbdOfVm(a, VM));
    expect(cmp.code, cmp.out).toBe(0);
  });

  it('3. refuses a ticket to a peer the host is not paired with (and another VM, epoch)', async () => {
    const t = a.agent.tickets!;
    const peerUri = 'secondsite://prod/host/hv-a';
    const self = await refusalOf(t.credentials({ peerHost: 'hv-a', peerUri, vm: VM, epoch: 1 }));
    expect(self.code).toBe('SS_NOT_PAIRED');
    const bUri = 'secondsite://prod/host/hv-b';
    const noItem = await refusalOf(
      t.credentials({ peerHost: 'hv-b', peerUri: bUri, vm: 'nope', epoch: 1 }),
    );
    expect(noItem.code).toBe('SS_NOT_PAIRED');
    const epoch = await refusalOf(
      t.credentials({ peerHost: 'hv-b', peerUri: bUri, vm: VM, epoch: 7 }),
    );
    expect(epoch.code).toBe('SS_NOT_PAIRED');
    // The positive control: the same request under the item's epoch is granted.
    const ok = await t.credentials({ peerHost: 'hv-b', peerUri: bUri, vm: VM, epoch: 1 });
    expect(ok.server).toBe(bUri);
  });

  it("4. hv-a's 8083 refuses a ticket the coordinator issued for hv-b", async () => {
    const bUri = 'secondsite://prod/host/hv-b';
    const creds = await a.agent.tickets!.credentials({
      peerHost: 'hv-b',
      peerUri: bUri,
      vm: VM,
      epoch: 1,
    });
    const aPort = reportOf(provider, 'hv-a').ticketPort!;
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(aPort, '127.0.1.1', () => resolve(s));
      s.once('error', reject);
    });
    const r = await refusalOf(
      connectTicketChannel(socket, { credentials: async () => creds, expectedPeer: bUri }),
    );
    socket.destroy();
    expect([r.code, r.details.reason]).toEqual(['SS_TICKET_INVALID', 'wrong-service']);
  });
});
