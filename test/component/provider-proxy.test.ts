/** A provider behind an HTTP CONNECT proxy registers and keeps its channel through it (R3). */
import { afterEach, describe, expect, it } from 'vitest';
import { startConnectProxy } from '../helpers/connect-proxy.ts';
import { ProviderLab } from '../helpers/provider-lab.ts';
import { waitFor } from '../helpers/wait-for.ts';

let lab: ProviderLab;
afterEach(async () => lab.cleanup());

describe('provider through a proxy', () => {
  it('registers and connects through the proxy', async () => {
    lab = new ProviderLab();
    const proxy = await startConnectProxy();
    const c = await lab.coordinator();
    await c.api.createVault('prod');
    const p = await lab.provider({
      data: lab.path('ny'),
      key: await lab.key(c.api, 'prod'),
      proxy: proxy.url,
    });
    await waitFor(async () => (await c.api.listServers('prod'))[0]?.state === 'connected');
    const host = new URL(c.url).host;
    // One tunnel to register, one for the authenticated channel.
    expect(proxy.targets).toEqual([host, host]);
    await p.stop();
    await proxy.close();
  });

  it('refuses to go on when the proxy refuses the tunnel (407)', async () => {
    lab = new ProviderLab();
    const proxy = await startConnectProxy({ refuse: true });
    const c = await lab.coordinator();
    await c.api.createVault('prod');
    await expect(
      lab.provider({ data: lab.path('ny'), key: await lab.key(c.api, 'prod'), proxy: proxy.url }),
    ).rejects.toMatchObject({
      code: 'SS_UNAUTHENTICATED',
      message: expect.stringMatching(/refused the tunnel/),
    });
    await proxy.close();
  });
});
