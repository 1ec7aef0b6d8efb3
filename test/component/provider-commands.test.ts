/**
 * Coordinator commands reach the provider over the real channel client (TLS with client
 * certificates, a `ws` server on port 0 standing in for the coordinator) and are applied once:
 * a command resent after a reconnect, or after a provider restart, gets the first answer again.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  createChannelClient,
  type ChannelState,
} from '../../agent/provider/channel/agent-channel-client.ts';
import { CommandLog } from '../../agent/provider/commands/command-log.ts';
import { commandDispatcher } from '../../agent/provider/commands/command-handlers.ts';
import { parseSite } from '../../agent/provider/site/site-file.ts';
import { silentLogger } from '../../common/log/log.ts';
import {
  agentChannelCodec,
  type AgentCommandResult,
  type AgentEnvelope,
} from '../../common/wire/agent-channel-messages.ts';
import { coordinatorIdentity, createTestCa, providerIdentity } from '../helpers/test-ca.ts';
import { NEW_YORK_SITE } from '../helpers/provider-lab.ts';
import { waitFor } from '../helpers/wait-for.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const codec = agentChannelCodec();
const COMMAND: AgentEnvelope = {
  commandId: 'j-1.fetch-cloud',
  command: { syncCloud: { cloud: 'GoldCloud1' } },
};

/** A stand-in coordinator: welcomes each connection and sends COMMAND on it. */
async function fakeCoordinator(ca: ReturnType<typeof createTestCa>) {
  const server = ca.issue(coordinatorIdentity('coordinator'), { usage: 'server' });
  const https: Server = createServer({
    key: server.keyPem,
    cert: server.certPem,
    ca: ca.rootCertPem,
    requestCert: true,
    rejectUnauthorized: true,
  });
  const wss = new WebSocketServer({ server: https });
  const results: AgentCommandResult[] = [];
  const connections: WebSocket[] = [];
  wss.on('connection', (ws) => {
    connections.push(ws);
    ws.on('message', (data: Buffer) => {
      const env = codec.decode(data);
      if (env.body === 'hello') {
        ws.send(codec.encode({ welcome: { protocol: 1, heartbeatMs: 100 } }));
        ws.send(codec.encode(COMMAND));
      } else if (env.body === 'commandResult' && 'commandResult' in env) {
        expect(env.commandId).toBe(COMMAND.commandId);
        results.push(env.commandResult);
        // The first answer is "lost": the connection breaks before the coordinator keeps it.
        if (results.length === 1) ws.terminate();
      }
    });
  });
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
  const port = (https.address() as { port: number }).port;
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        https.close(() => r());
      }),
  );
  return { url: `https://127.0.0.1:${port}`, results, connections };
}

describe('provider commands', () => {
  it('applies a command once when it is resent after a reconnect and after a restart', async () => {
    const data = mkdtempSync(join(tmpdir(), 'ss-cmd-'));
    cleanups.push(() => rmSync(data, { recursive: true, force: true }));
    const ca = createTestCa();
    const coordinator = await fakeCoordinator(ca);
    const client = ca.issue(providerIdentity('prod', 'vmm-newyork'), { usage: 'client' });
    const site = parseSite(readFileSync(NEW_YORK_SITE, 'utf8'), NEW_YORK_SITE);
    const commands = commandDispatcher(() => site, await CommandLog.open(data));
    const states = new Set<ChannelState>();
    const channel = createChannelClient({
      identity: {
        info: {
          vault: 'prod',
          vaultId: 'v-000000000001',
          name: 'VMM-NewYork',
          identity: 'secondsite://prod/provider/vmm-newyork',
          coordinatorUrl: coordinator.url,
          caFingerprint: ca.fingerprint,
          registeredAt: new Date().toISOString(),
        },
        clientKeyPem: client.keyPem,
        clientCertPem: client.certPem,
        caKeyPem: '',
        caCertPem: '',
        rootCaPem: ca.rootCertPem,
      },
      version: 'test',
      inventory: () => ({ clouds: [], hosts: [] }),
      commands,
      backoff: { baseMs: 20, capMs: 100 },
      now: Date.now,
      log: silentLogger,
    });
    const stop = new AbortController();
    const running = channel.run(stop.signal);
    const poll = setInterval(() => states.add(channel.state()), 5);
    cleanups.push(async () => {
      clearInterval(poll);
      stop.abort();
      await channel.shutdown();
      await running;
    });

    await waitFor(() => coordinator.results.length >= 2, { what: 'the resent command answered' });
    expect(coordinator.connections.length).toBeGreaterThanOrEqual(2);
    expect(coordinator.results[1]).toEqual(coordinator.results[0]);
    expect(coordinator.results[0]).toMatchObject({
      cloud: { name: 'GoldCloud1', hostGroups: ['NY-Gold'] },
    });
    expect(commands.applied()).toBe(1);
    expect(states.has('backoff') || states.has('connecting')).toBe(true);

    // A restarted provider reads the answered ids back from its data folder.
    const restarted = commandDispatcher(() => site, await CommandLog.open(data));
    const replayed = await restarted.dispatch(COMMAND.commandId!, {
      syncCloud: { cloud: 'GoldCloud1' },
    });
    expect(replayed.cloud).toEqual(coordinator.results[0]!.cloud);
    expect(restarted.applied()).toBe(0);
    // A new id is applied; an unknown cloud is answered with an error, once.
    const missing = await restarted.dispatch('j-2.fetch-cloud', { syncCloud: { cloud: 'Nope' } });
    expect(missing.error).toMatchObject({ code: 'SS_NOT_FOUND' });
    expect(restarted.applied()).toBe(1);
  });
});
