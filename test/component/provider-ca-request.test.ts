/**
 * A provider's request for a successor CA (agent_channel.proto step 8) is answered on the
 * connection it went out on. When that connection is lost first (here: a proxy drops what the
 * coordinator sends back, and the channel's heartbeat check rebuilds it), the request fails at
 * once with SS_UNAVAILABLE {reason: channel-closed}, so the CA rotation retries at its next
 * check instead of waiting out the 30 s request timeout; on the new connection it succeeds.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createKeyAndCsr } from '../../certs/csr.ts';
import { fingerprintOfPem } from '../../certs/inspect.ts';
import { parseIdentity } from '../../certs/identity.ts';
import { verifyChain } from '../../certs/verify.ts';
import { startConnectProxy, type TestProxy } from '../helpers/connect-proxy.ts';
import { ProviderLab } from '../helpers/provider-lab.ts';
import { waitFor } from '../helpers/wait-for.ts';

let lab: ProviderLab | undefined;
let proxy: TestProxy | undefined;
afterAll(async () => {
  await lab?.cleanup();
  await proxy?.close();
});

describe('provider CA request over the agent channel', () => {
  it('fails at once when its connection closes unanswered; a retry on the next succeeds', async () => {
    lab = new ProviderLab();
    proxy = await startConnectProxy();
    const c = await lab.coordinator(undefined, { providerCaLifetimeMs: 60_000 });
    await c.api.createVault('prod');
    const p = await lab.provider({
      data: lab.path('ny'),
      key: await lab.key(c.api, 'prod'),
      proxy: proxy.url,
    });
    const channel = p.agent.channel;
    await waitFor(() => channel.state() === 'connected', { what: 'the channel' });
    const csr = () =>
      createKeyAndCsr({ identity: parseIdentity(p.agent.identity.info.identity) }).csrPem;

    proxy.hold(); // the request reaches the coordinator; its answer does not come back
    await expect(channel.requestProviderCa(csr())).rejects.toMatchObject({
      code: 'SS_UNAVAILABLE',
      details: { reason: 'channel-closed' },
    });

    proxy.release(); // retried as the CA rotation does, until a new connection answers
    const pem = await waitFor(() => channel.requestProviderCa(csr()).catch(() => undefined), {
      what: 'a successor CA on a new connection',
      intervalMs: 100,
    });
    expect(verifyChain(pem, [p.agent.identity.rootCaPem], Date.now()).ok).toBe(true);
    expect(fingerprintOfPem(pem)).not.toBe(fingerprintOfPem(p.agent.identity.caCertPem));
  });
});
