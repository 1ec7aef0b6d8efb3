/**
 * The provider agent process: only wiring (STYLE.md rule 1). Validate options and the site
 * file (bad input exits 2 before anything changes), lock the data folder, register or load the
 * identity, keep the channel up until SIGTERM/SIGINT, then stop in reverse order.
 */
import { mkdir } from 'node:fs/promises';
import { lockDataFolder } from '../../common/lifecycle/data-lock.ts';
import { abortOnSignals } from '../../common/lifecycle/lifecycle.ts';
import { createLogger, type Logger } from '../../common/log/log.ts';
import type { Clock } from '../../common/time/clock.ts';
import { compileProviderConfig, type ProviderOptions } from './config.ts';
import type { BackoffOptions } from './domain/backoff.ts';
import { createProviderAgent, type ProviderAgent } from './provider-agent.ts';
import { loadSite } from './site/site-file.ts';

export type { ProviderOptions } from './config.ts';

export interface StartedProvider {
  readonly agent: ProviderAgent;
  /** Where the host join token was written. */
  readonly dataDir: string;
  /** The host endpoint's address (--listen); its port is agent.hosts.port. */
  readonly hostsHost: string;
  stop(): Promise<void>;
}

export async function startProvider(
  options: ProviderOptions,
  deps: {
    log?: Logger;
    backoff?: BackoffOptions;
    signal?: AbortSignal;
    /** The CA rotation's check period (tests shorten it). */
    caRotation?: { checkEveryMs?: number };
    /** The agent's time: certificates it signs, CA rotation steps. @default systemClock */
    clock?: Clock;
  } = {},
): Promise<StartedProvider> {
  const config = compileProviderConfig(options);
  const site = loadSite(config.sitePath);
  const log = deps.log ?? createLogger({ name: 'provider' });
  const clock = deps.clock;
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const lock = lockDataFolder(config.dataDir);
  try {
    const agent = await createProviderAgent({
      config,
      site,
      log,
      ...(deps.backoff === undefined ? {} : { backoff: deps.backoff }),
      ...(deps.signal === undefined ? {} : { signal: deps.signal }),
      ...(deps.caRotation === undefined ? {} : { caRotation: deps.caRotation }),
      ...(clock === undefined ? {} : { now: () => clock.now() }),
    });
    const running = new AbortController();
    const done = agent.run(running.signal);
    log.info(
      { server: agent.identity.info.name, vault: agent.identity.info.vault },
      'provider started',
    );
    return {
      agent,
      dataDir: config.dataDir,
      hostsHost: config.listen.host,
      async stop() {
        running.abort();
        await agent.shutdown();
        await done;
        lock.release();
        log.info('provider stopped');
      },
    };
  } catch (e) {
    lock.release();
    throw e;
  }
}

/** `secondsite provider start`: runs until SIGTERM or SIGINT. */
export async function runProvider(
  options: ProviderOptions,
  onStarted: (p: StartedProvider) => void = () => undefined,
): Promise<void> {
  const signals = abortOnSignals();
  const provider = await startProvider(options, { signal: signals.signal });
  onStarted(provider);
  if (!signals.signal.aborted) {
    await new Promise<void>((resolve) =>
      signals.signal.addEventListener('abort', () => resolve(), { once: true }),
    );
  }
  await provider.stop();
}
