/**
 * `POST /api/v1/vaults/:vault/revoked-hosts` through inject(): vault "prod" with hosts ny-hv1
 * (connected; its provider's channel is a fake session that answers each command at once),
 * ny-hv2 (reported, not connected) and chi-hv1 (connected). The list is stored before the
 * answer, sent to every connected host, and again to a host whose report is behind.
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log/log.ts';
import type { AgentEnvelope } from '../../common/wire/agent-channel-messages.ts';
import type { HostCommand } from '../../common/wire/host-control-messages.ts';
import { ChannelHub, type ChannelSession } from '../channel/channel-hub.ts';
import { identityNameOf } from '../domain/server.ts';
import { VmInventory } from '../inventory/vm-inventory.ts';
import { RevocationService } from '../revocation/revocation-service.ts';
import { collect, keys, type Store } from '../store/store.ts';
import { headers, routeLab, type RouteLab } from './route-test.fixture.ts';

const NY = 'VMM-NewYork';
const CH = 'VMM-Chicago';
const url = '/api/v1/vaults/prod/revoked-hosts';

let lab: RouteLab;
let store: Store;
let app: FastifyInstance;
let vms: VmInventory;
/** Every host command the fake providers received, as `server host kind version`. */
let sent: string[];

function fakeSession(hub: ChannelHub, vaultId: string, server: string): ChannelSession {
  const session: ChannelSession = {
    vaultId,
    identityName: identityNameOf(server),
    send(envelope: AgentEnvelope) {
      const relay = (envelope as { command?: { host?: { host: string; command: HostCommand } } })
        .command?.host;
      if (!relay || !envelope.commandId) return;
      sent.push(
        `${server} ${relay.host} ${relay.command.setRevoked ? 'setRevoked' : '?'} ${relay.command.setRevoked?.version ?? ''}`,
      );
      const id = envelope.commandId;
      queueMicrotask(() =>
        hub.onResult(session, id, { host: { commandId: relay.command.commandId, error: null } }),
      );
    },
    close: () => undefined,
  };
  return session;
}

const report = (server: string, host: string, connected: boolean, revokedVersion = '0') =>
  vms.report(lab.vault.id, server, {
    host,
    hostGroup: 'G',
    cloud: '',
    connected,
    inventory: { vms: [], revokedVersion },
  });

beforeEach(async () => {
  sent = [];
  let hub: ChannelHub | undefined;
  lab = await routeLab(({ store, clock, vaults }) => {
    vms = new VmInventory(store, clock);
    hub = new ChannelHub(60_000, clock, silentLogger);
    return {
      vms,
      revocation: new RevocationService({ store, clock, log: silentLogger, vaults, vms, hub }),
    };
  });
  ({ store, app } = lab);
  hub!.attach(fakeSession(hub!, lab.vault.id, NY));
  hub!.attach(fakeSession(hub!, lab.vault.id, CH));
  await report(NY, 'ny-hv1', true);
  await report(NY, 'ny-hv2', false);
  await report(CH, 'chi-hv1', true);
});

afterEach(() => lab.close());

describe('host revoke route', () => {
  it('stores the identity (version 1) and sends the list to every connected host', async () => {
    const res = await app.inject({
      method: 'POST',
      url,
      headers,
      payload: { host: `${NY}/ny-hv1` },
    });
    expect(res.statusCode).toBe(200);
    const view = res.json();
    expect(view).toMatchObject({
      host: `${NY}/ny-hv1`,
      identity: 'secondsite://prod/host/ny-hv1',
      changed: true,
      version: 1,
      identities: ['secondsite://prod/host/ny-hv1'],
    });
    const byHost = Object.fromEntries(
      (view.hosts as { host: string; applied: boolean }[]).map((h) => [h.host, h.applied]),
    );
    expect(byHost).toEqual({
      [`${NY}/ny-hv1`]: true,
      [`${NY}/ny-hv2`]: false,
      [`${CH}/chi-hv1`]: true,
    });
    expect(await store.get(keys.revoked(lab.vault.id))).toMatchObject({
      version: 1,
      identities: ['secondsite://prod/host/ny-hv1'],
    });
    expect(sent.sort()).toEqual([`${CH} chi-hv1 setRevoked 1`, `${NY} ny-hv1 setRevoked 1`]);
  });

  it('is idempotent: the same host again changes nothing; another one is version 2', async () => {
    const payload = { host: `${NY}/ny-hv1` };
    await app.inject({ method: 'POST', url, headers, payload });
    const again = (await app.inject({ method: 'POST', url, headers, payload })).json();
    expect([again.changed, again.version]).toEqual([false, 1]);
    const other = (
      await app.inject({ method: 'POST', url, headers, payload: { host: `${CH}/chi-hv1` } })
    ).json();
    expect([other.changed, other.version, other.identities]).toEqual([
      true,
      2,
      ['secondsite://prod/host/chi-hv1', 'secondsite://prod/host/ny-hv1'],
    ]);
  });

  it('sends the list again to a host that comes back reporting an older version', async () => {
    await app.inject({ method: 'POST', url, headers, payload: { host: `${NY}/ny-hv1` } });
    sent = [];
    await report(NY, 'ny-hv2', true, '0');
    await report(CH, 'chi-hv1', true, '1'); // up to date: nothing sent
    await expect.poll(() => sent).toEqual([`${NY} ny-hv2 setRevoked 1`]);
  });

  it('answers 400 naming host or vault for unknown ones, storing nothing', async () => {
    const before = await collect(store, '');
    const host = await app.inject({
      method: 'POST',
      url,
      headers,
      payload: { host: `${NY}/nope` },
    });
    expect(host.statusCode).toBe(400);
    expect(host.json().error).toMatchObject({ code: 'SS_BAD_INPUT', details: { field: 'host' } });
    const vault = await app.inject({
      method: 'POST',
      url: '/api/v1/vaults/other/revoked-hosts',
      headers,
      payload: { host: `${NY}/ny-hv1` },
    });
    expect(vault.statusCode).toBe(400);
    expect(vault.json().error).toMatchObject({ code: 'SS_BAD_INPUT', details: { field: 'vault' } });
    expect(await collect(store, '')).toEqual(before);
    expect(sent).toEqual([]);
  });
});
