/**
 * In-process coordinator and provider agents for component tests: real HTTPS/WebSocket servers
 * on port 0, temporary data folders, fast heartbeats and backoff. Everything started is
 * stopped by `cleanup()`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetchTrusting } from '../../cli/admin-config.ts';
import { startProvider, type StartedProvider } from '../../agent/provider/main.ts';
import type { ProviderOptions } from '../../agent/provider/config.ts';
import { createApiClient, type ApiClient } from '../../common/api-client/index.ts';
import { silentLogger } from '../../common/log/log.ts';
import type { Clock } from '../../common/time/clock.ts';
import { startCoordinator, type StartedCoordinator } from '../../coordinator/main.ts';

export const SITES = fileURLToPath(new URL('../../deploy/sites/', import.meta.url));
export const NEW_YORK_SITE = join(SITES, 'new-york.json');
export const CHICAGO_SITE = join(SITES, 'chicago.json');

/** Short enough that tests see liveness quickly; long enough not to flood the event loop. */
export const TEST_HEARTBEAT_MS = 200;
const FAST_BACKOFF = { baseMs: 50, capMs: 400 };

export class ProviderLab {
  private readonly cleanups: Array<() => Promise<void> | void> = [];
  readonly root = mkdtempSync(join(tmpdir(), 'ss-prov-'));

  constructor() {
    this.cleanups.push(() => rmSync(this.root, { recursive: true, force: true }));
  }

  path(name: string): string {
    return join(this.root, name);
  }

  async coordinator(
    data = this.path('coordinator'),
    opts: { listen?: string; clock?: Clock; providerCaLifetimeMs?: number } = {},
  ): Promise<StartedCoordinator & { api: ApiClient }> {
    const c = await startCoordinator(
      { data, listen: opts.listen ?? '127.0.0.1:0', heartbeatMs: TEST_HEARTBEAT_MS },
      {
        log: silentLogger,
        ...(opts.clock === undefined ? {} : { clock: opts.clock }),
        ...(opts.providerCaLifetimeMs === undefined
          ? {}
          : { providerCaLifetimeMs: opts.providerCaLifetimeMs }),
      },
    );
    let stopped = false;
    const stop = async (): Promise<void> => {
      if (!stopped) await c.stop();
      stopped = true;
    };
    this.cleanups.push(stop);
    const admin = JSON.parse(readFileSync(c.adminFile, 'utf8')) as {
      url: string;
      adminToken: string;
    };
    const transport = fetchTrusting(c.caCertPem);
    this.cleanups.push(() => transport.close());
    const api = createApiClient({
      url: admin.url,
      token: admin.adminToken,
      fetch: transport.fetch,
    });
    return { ...c, stop, api };
  }

  /** Downloads a key through the API and writes it as `key download` does. */
  async key(
    api: ApiClient,
    vault: string,
    opts: { validFor?: string; singleUse?: boolean; server?: string } = {},
    file = this.path(`key-${Math.random().toString(16).slice(2)}.json`),
  ): Promise<string> {
    const key = await api.downloadKey(vault, opts);
    writeFileSync(file, JSON.stringify(key, null, 2), { mode: 0o600 });
    return file;
  }

  async provider(
    opts: Partial<ProviderOptions> & { data: string },
    deps: { caRotation?: { checkEveryMs?: number }; clock?: Clock } = {},
  ): Promise<StartedProvider> {
    const p = await startProvider(
      // Port 0: several providers of one test must not share the default host port.
      { site: NEW_YORK_SITE, listen: '127.0.0.1:0', ...opts },
      { log: silentLogger, backoff: FAST_BACKOFF, ...deps },
    );
    let stopped = false;
    const stop = async (): Promise<void> => {
      if (!stopped) await p.stop();
      stopped = true;
    };
    this.cleanups.push(stop);
    return { ...p, stop };
  }

  /** A copy of a site file under a new server name. */
  site(from: string, server: string): string {
    const out = this.path(`${server}.json`);
    const text = readFileSync(from, 'utf8').replace(/"server": "[^"]*"/, `"server": "${server}"`);
    writeFileSync(out, text);
    return out;
  }

  async cleanup(): Promise<void> {
    for (const c of this.cleanups.splice(0).reverse()) await c();
  }
}
