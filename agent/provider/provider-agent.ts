/**
 * The provider agent as a long-lived part (STYLE.md rule 1): create() registers on the first
 * start (or loads the stored identity), writes the host join token and prepares the channel;
 * run() keeps the channel up and rotates the provider's CA (provider-ca.ts) until the signal
 * aborts; shutdown() closes them.
 */
import { createHash } from 'node:crypto';
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { HostCommand } from '../../common/wire/host-control-messages.ts';
import type { Logger } from '../../common/log/log.ts';
import { loadIdentity, type StoredIdentity } from '../common/identity-store.ts';
import { createChannelClient, type ChannelClient } from './channel/agent-channel-client.ts';
import { CommandLog } from './commands/command-log.ts';
import { commandDispatcher, type CommandDispatcher } from './commands/command-handlers.ts';
import type { ProviderConfig } from './config.ts';
import type { BackoffOptions } from './domain/backoff.ts';
import { enrolHost } from './hosts/enrol.ts';
import { renewHost } from './hosts/renew.ts';
import { HostRegistry } from './hosts/host-registry.ts';
import { startHostsServer, type HostsServer } from './hosts/hosts-server.ts';
import { ProviderCa, type SigningCa } from './hosts/provider-ca.ts';
import {
  HostsServerCertificates,
  hostsServerTls,
  type HostsServerTls,
} from './hosts/server-tls.ts';
import { TicketRelay } from './hosts/ticket-relay.ts';
import { ensureHostJoinToken, renameTokenCa } from './registration/host-join-token.ts';
import { readKeyFile, registerWithRetry } from './registration/register.ts';
import type { Site } from './site/site-file.ts';
import { siteInventory } from './site/site-inventory.ts';

export const PROVIDER_VERSION = '0.1.0';

export interface ProviderAgent {
  readonly identity: StoredIdentity;
  readonly channel: ChannelClient;
  readonly commands: CommandDispatcher;
  /** The host endpoint (--listen) and what the provider knows of its hosts. */
  readonly hosts: { readonly port: number; readonly registry: HostRegistry };
  /** The provider's CA across rotations. */
  readonly ca: ProviderCa;
  run(signal: AbortSignal): Promise<void>;
  shutdown(): Promise<void>;
}

interface IdentityContext {
  readonly config: ProviderConfig;
  readonly site: Site;
  readonly name: string;
  readonly log: Logger;
  readonly now: () => number;
  readonly signal?: AbortSignal;
  readonly backoff?: BackoffOptions;
}

async function identityFor(ctx: IdentityContext): Promise<StoredIdentity> {
  const { config, site, name, log, now } = ctx;
  const stored = await loadIdentity(config.dataDir);
  const key = config.keyPath === undefined ? undefined : await readKeyFile(config.keyPath);
  if (stored !== undefined) {
    if (key !== undefined && key.key.vaultId !== stored.info.vaultId) {
      throw new SecondsiteError(
        'SS_KEY_OTHER_VAULT',
        `this provider is registered in vault ${stored.info.vault}; the key is for vault ${key.key.vault}. Start it without --key, or use another data folder to register into ${key.key.vault}`,
        { registeredVault: stored.info.vault, keyVault: key.key.vault },
      );
    }
    if (key !== undefined) log.info('already registered: --key is not needed and was ignored');
    if (stored.info.name.toLowerCase() !== name.toLowerCase()) {
      throw new SecondsiteError(
        'SS_BAD_INPUT',
        `name: this provider is registered as ${stored.info.name}, not ${name}`,
        { field: 'name' },
      );
    }
    return stored;
  }
  if (key === undefined) {
    throw new SecondsiteError(
      'SS_BAD_INPUT',
      'key: the first start registers the provider: pass --key KEY.json (secondsite key download)',
      { field: 'key' },
    );
  }
  return registerWithRetry({
    ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
    ...(ctx.backoff === undefined ? {} : { backoff: ctx.backoff }),
    dataDir: config.dataDir,
    keyText: key.text,
    key: key.key,
    serverName: name,
    version: PROVIDER_VERSION,
    syncClouds: config.syncClouds,
    inventory: siteInventory(site.file),
    ...(config.proxy === undefined ? {} : { proxy: config.proxy }),
    now,
    log,
  });
}

export async function createProviderAgent(a: {
  config: ProviderConfig;
  site: Site;
  log: Logger;
  now?: () => number;
  backoff?: BackoffOptions;
  /** Stops a registration that waits for an unreachable coordinator. */
  signal?: AbortSignal;
  /** The CA rotation's check period (tests shorten it). */
  caRotation?: { checkEveryMs?: number };
}): Promise<ProviderAgent> {
  const now = a.now ?? Date.now;
  const name = a.config.name ?? a.site.file.server;
  if (a.config.name !== undefined && a.config.name !== a.site.file.server) {
    throw new SecondsiteError(
      'SS_BAD_INPUT',
      `name: --name ${a.config.name} and the site file's server ${a.site.file.server} differ; make them the same`,
      { field: 'name', site: a.site.path },
    );
  }
  const identity = await identityFor({
    config: a.config,
    site: a.site,
    name,
    log: a.log,
    now,
    ...(a.signal === undefined ? {} : { signal: a.signal }),
    ...(a.backoff === undefined ? {} : { backoff: a.backoff }),
  });
  const providerCa = await ProviderCa.open({
    dataDir: a.config.dataDir,
    identity,
    requestSuccessor: (csr) => channel.requestProviderCa(csr),
    onChange: () => publish(),
    now,
    log: a.log,
    ...(a.caRotation?.checkEveryMs === undefined
      ? {}
      : { checkEveryMs: a.caRotation.checkEveryMs }),
  });
  // The token names the CA the host endpoint presents: the signing one.
  const tokenPath = await ensureHostJoinToken(a.config.dataDir, providerCa.signing().certPem);
  a.log.info({ tokenPath }, 'host join token ready');
  const registry = new HostRegistry({
    site: () => a.site.file,
    report: (hostInventory) => void channel.send({ hostInventory }),
    log: a.log.child({ component: 'hosts' }),
  });
  // Relayed host commands go through the registry to the host's control session.
  const commands = commandDispatcher(
    () => a.site,
    await CommandLog.open(a.config.dataDir),
    registry,
  );
  // Hosts' ticket service requests go up the channel; the answers come back by id.
  const tickets = new TicketRelay({
    send: (env) => channel.send(env),
    log: a.log.child({ component: 'ticket-relay' }),
  });
  const channel = createChannelClient({
    onTicketReply: (reply) => tickets.fromCoordinator(reply),
    onConnected: () => {
      for (const hostInventory of registry.reports()) channel.send({ hostInventory });
    },
    identity,
    version: PROVIDER_VERSION,
    inventory: () => siteInventory(a.site.file),
    commands,
    ...(a.config.proxy === undefined ? {} : { proxy: a.config.proxy }),
    ...(a.backoff === undefined ? {} : { backoff: a.backoff }),
    now,
    log: a.log.child({ component: 'channel' }),
  });
  const serverTls = (): HostsServerTls =>
    hostsServerTls(identity, a.config.listen.host, now(), providerCa.signing());
  const serverCerts = new HostsServerCertificates(serverTls());
  /** A CA rotation step: new server chain, the bundle to every host, the token's CA. */
  const publish = (): void => {
    serverCerts.update(serverTls());
    registry.setTrustBundle(trustBundleCommand(providerCa.bundle()));
    renameTokenCa(a.config.dataDir, providerCa.signing().certPem).catch((e: unknown) =>
      a.log.warn({ err: e }, 'cannot update the host join token'),
    );
  };
  registry.setTrustBundle(trustBundleCommand(providerCa.bundle()));
  const hostsServer = await serveHosts(
    { config: a.config, identity, site: a.site, registry, now, log: a.log, tickets },
    providerCa,
    serverCerts,
  );
  return {
    identity,
    channel,
    commands,
    hosts: { port: hostsServer.port, registry },
    ca: providerCa,
    run: async (signal) => {
      await Promise.all([channel.run(signal), providerCa.run(signal)]);
    },
    async shutdown() {
      await providerCa.shutdown();
      registry.close();
      tickets.close();
      await hostsServer.shutdown();
      await channel.shutdown();
    },
  };
}

/** set_trust_bundle (HostCommand 32), its id naming the bundle so a host applies it once. */
function trustBundleCommand(bundlePem: string): HostCommand {
  const digest = createHash('sha256').update(bundlePem).digest('hex').slice(0, 32);
  return { commandId: `trust-bundle-${digest}`, setTrustBundle: { bundlePem } };
}

interface HostsContext {
  readonly config: ProviderConfig;
  readonly identity: StoredIdentity;
  readonly site: Site;
  readonly registry: HostRegistry;
  readonly now: () => number;
  readonly log: Logger;
  readonly tickets: TicketRelay;
}

/** The host endpoint on --listen: enrolment and the hosts' control streams. */
function serveHosts(
  c: HostsContext,
  ca: SigningCa,
  tls: HostsServerCertificates,
): Promise<HostsServer> {
  const { config, identity, site, now } = c;
  return startHostsServer({
    listen: config.listen,
    tls,
    vault: identity.info.vault,
    site: () => site.file,
    enrol: (req) =>
      enrolHost({ dataDir: config.dataDir, identity, ca, site: () => site.file, now }, req),
    renew: (caller, peer, req) =>
      renewHost({ identity, ca, site: () => site.file, now }, caller, peer, req),
    registry: c.registry,
    tickets: c.tickets,
    clock: { now },
    log: c.log.child({ component: 'hosts' }),
  });
}
