/**
 * The coordinator process: only wiring (STYLE.md rule 1). Load the options, lock the data
 * folder, open and upgrade the store, make or load the PKI and the admin token, build the
 * services, listen, write admin.json, resume unfinished jobs; stop in the reverse order.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { badInput } from '../common/errors/errors.ts';
import { lockDataFolder, type DataLock } from '../common/lifecycle/data-lock.ts';
import { abortOnSignals } from '../common/lifecycle/lifecycle.ts';
import { createLogger, type Logger } from '../common/log/log.ts';
import { systemClock, type Clock } from '../common/time/clock.ts';
import { ensureAdminToken, writeAdminFile } from './admin/admin-access.ts';
import { adminAuth } from './api/admin-auth.ts';
import { buildApi } from './api/server.ts';
import { compileConfig, type CoordinatorConfig, type CoordinatorOptions } from './config.ts';
import { JobRunner } from './jobs/job-runner.ts';
import { JobTypeRegistry } from './jobs/job-types.ts';
import { testJobType, testJobsEnabled } from './jobs/test-job-type.ts';
import { ensurePki } from './pki/coordinator-pki.ts';
import { openLevelStore } from './store/level-store.ts';
import { upgradeSchema } from './store/schema.ts';
import type { Store } from './store/store.ts';
import { VaultService } from './vaults/vault-service.ts';
import { fingerprintOfPem } from '../certs/inspect.ts';
import { attachAgentChannel } from './channel/agent-channel-server.ts';
import { ChannelHub } from './channel/channel-hub.ts';
import { HostKeys, ensureTicketStoreKey } from './tickets/host-keys.ts';
import { TicketService } from './tickets/ticket-service.ts';
import { cloudSyncJobType } from './inventory/cloud-sync-job.ts';
import { InventoryService } from './inventory/inventory-service.ts';
import { VmInventory } from './inventory/vm-inventory.ts';
import { KeyService } from './registration/key-service.ts';
import { providerSigner, type ProviderSignerOptions } from './registration/provider-signer.ts';
import { registerJobType } from './registration/registration-job.ts';
import { RegistrationService } from './registration/registration-service.ts';
import { PolicyService } from './policies/policy-service.ts';
import { MapService } from './mappings/map-service.ts';
import { ProtectionService } from './replication/protection-service.ts';
import { BandwidthService } from './replication/bandwidth-service.ts';
import { RevocationService } from './revocation/revocation-service.ts';
import { CapacityService } from './capacity/capacity-service.ts';
import { protectionJobTypes } from './replication/protection-jobs.ts';
import { policyApplyJobType } from './replication/policy-apply-job.ts';
import { messageTrace } from './replication/message-trace.ts';
import { targetSiteOf } from './inventory/fabric.ts';
import { sameServer } from './domain/mapping.ts';
import type { JobType } from './jobs/job-types.ts';
import { PlanService } from './plans/plan-service.ts';
import { parseDuration } from '../common/config/units.ts';
import { FailoverOps } from './failover/failover-ops.ts';
import { FailoverService, failoverJobTypes } from './failover/failover-jobs.ts';

export type { CoordinatorOptions } from './config.ts';

export interface StartedCoordinator {
  readonly url: string;
  /** Path of admin.json (URL, CA certificate, admin token). */
  readonly adminFile: string;
  readonly caCertPem: string;
  /** Stops serving, lets running steps stop, closes the store and releases the data folder. */
  stop(): Promise<void>;
}

export interface StartDeps {
  readonly clock?: Clock;
  readonly log?: Logger;
  /** Lifetime of provider CAs; tests shorten it to run a CA rotation. @default a year */
  readonly providerCaLifetimeMs?: number;
}

/** The URL clients use: a wildcard listen address is reached through loopback. */
function urlFor(host: string, port: number): string {
  if (host === '0.0.0.0') return `https://127.0.0.1:${port}`;
  if (host === '::') return `https://[::1]:${port}`;
  return host.includes(':') ? `https://[${host}]:${port}` : `https://${host}:${port}`;
}

/** A busy, foreign or privileged address is the operator's to change: bad input on --listen. */
async function listenOn(
  app: ReturnType<typeof buildApi>,
  listen: { host: string; port: number },
): Promise<void> {
  try {
    await app.listen({ host: listen.host, port: listen.port });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL' || code === 'EACCES') {
      await app.close();
      throw badInput('listen', `cannot listen on ${listen.host}:${listen.port} (${code})`);
    }
    throw e;
  }
}

function jobTypes(
  testJobs: boolean,
  log: Logger,
  types: {
    register: ReturnType<typeof registerJobType>;
    cloudSync: ReturnType<typeof cloudSyncJobType>;
    protection: readonly JobType<unknown>[];
  },
): JobTypeRegistry {
  const registry = new JobTypeRegistry().register(types.register).register(types.cloudSync);
  for (const t of types.protection) registry.register(t);
  if (testJobs) {
    log.warn('SECONDSITE_TEST_JOBS=1: the test-only job type is enabled');
    registry.register(testJobType);
  }
  return registry;
}

/** Services and the HTTPS API over an open store; close() undoes exactly this. */
async function serve(
  config: CoordinatorConfig,
  store: Store,
  clock: Clock,
  log: Logger,
  signerOptions: ProviderSignerOptions = {},
): Promise<Omit<StartedCoordinator, 'stop'> & { close(): Promise<void> }> {
  const signer = providerSigner(config.dataDir, signerOptions);
  const pki = await ensurePki({ dataDir: config.dataDir, host: config.listen.host, clock, log });
  const admin = await ensureAdminToken({ store, dataDir: config.dataDir, clock, log });
  const vaults = new VaultService(store, clock);
  const hub = new ChannelHub(config.heartbeatMs, clock, log.child({ component: 'channel' }));
  const inventory = new InventoryService(store, clock, hub);
  const vms = new VmInventory(store, clock);
  const policies = new PolicyService(store, clock);
  const maps = new MapService(store);
  const protection = new ProtectionService({
    store,
    clock,
    log: log.child({ component: 'protection' }),
    vaults,
    vms,
    hub,
    policies,
    maps,
    targetSite: async (vaultId, server, cloud) => {
      const record = await inventory.requireServer(vaultId, server);
      const hosts = await vms.hosts(vaultId);
      return targetSiteOf(record, cloud, (host) =>
        hosts.some((h) => sameServer(h.server, server) && h.host === host && h.connected),
      );
    },
    timeScale: config.timeScale,
    monitoringWindowMs: config.monitoringWindowMs,
  });
  maps.onChange((change) => {
    protection
      .onMapChange(change)
      .catch((e: unknown) =>
        log.error({ err: e }, 'could not start reconnecting replicas after a network map change'),
      );
  });
  const plans = new PlanService({ store, clock, items: protection.items, pairs: policies });
  const failoverOps = new FailoverOps(protection);
  // The runner needs the job types, which need the failover service: filled in below.
  const late: { runner?: JobRunner } = {};
  const failover = new FailoverService({
    vaults,
    ops: failoverOps,
    plans,
    jobs: () => {
      if (late.runner === undefined) throw new Error('the job runner is not ready');
      return late.runner;
    },
  });
  const trace = config.traceFile === undefined ? undefined : messageTrace(config.traceFile);
  let url = '';
  const keys = new KeyService(store, clock, {
    coordinatorUrl: () => url,
    caFingerprint: fingerprintOfPem(pki.caCertPem),
  });
  const registry = jobTypes(config.testJobs, log, {
    register: registerJobType({ vaults, inventory, signer, clock }),
    cloudSync: cloudSyncJobType({ hub, inventory }),
    protection: [
      ...protectionJobTypes(protection),
      policyApplyJobType(protection),
      ...failoverJobTypes(failoverOps),
    ],
  });
  const jobs = new JobRunner({ store, registry, clock, log: log.child({ component: 'jobs' }) });
  late.runner = jobs;
  protection.setJobs(jobs);
  // Issue #7: the vault's revoked host list, pushed to every host (set_revoked).
  const revocation = new RevocationService({
    store,
    clock,
    log: log.child({ component: 'revocation' }),
    vaults,
    vms,
    hub,
  });
  const app = buildApi({
    vaults,
    jobs,
    auth: adminAuth(admin.tokenHash),
    log: log.child({ component: 'api' }),
    testJobs: config.testJobs,
    // The chain carries the root so a registering provider can pin it by fingerprint.
    https: {
      key: pki.serverKeyPem,
      cert: pki.serverCertPem + pki.caCertPem,
      clientCa: pki.caCertPem,
    },
    inventory: { keys, inventory, clock },
    vms,
    policies,
    maps,
    protection,
    plans,
    failover,
    capacity: {
      capacity: new CapacityService({ vaults, vms, items: protection.items, policies }),
      bandwidth: new BandwidthService({
        store,
        clock,
        log: log.child({ component: 'bandwidth' }),
        vaults,
        vms,
        hub,
        protection,
      }),
    },
    revocation,
    ...(trace === undefined ? {} : { trace }),
  });
  const registration = new RegistrationService({
    store,
    keys,
    vaults,
    jobs,
    log: log.child({ component: 'registration' }),
  });
  // The ticket service (8083 authentication): host keys sealed under the ticket-store key.
  const tickets = new TicketService({
    keys: new HostKeys(store, ensureTicketStoreKey(config.dataDir)),
    item: (vaultId, vm) => protection.items.get(vaultId, vm),
    revoked: (vaultId, uri) => revocation.isRevoked(vaultId, uri),
    reports: async (vaultId, server, host) =>
      (await vms.hosts(vaultId)).some(
        (h) => sameServer(h.server, server) && h.host.toLowerCase() === host.toLowerCase(),
      ),
    clock,
    log: log.child({ component: 'tickets' }),
  });
  const channel = attachAgentChannel(app.server, {
    hub,
    tickets,
    registration,
    vaults,
    inventory,
    vms,
    providerCa: (a) => signer.signSuccessorCa(a),
    clock,
    log: log.child({ component: 'agent-channel' }),
    ...(trace === undefined ? {} : { trace }),
  });
  await listenOn(app, config.listen);
  const address = app.server.address();
  url = urlFor(config.listen.host, typeof address === 'object' ? (address?.port ?? 0) : 0);
  let adminFile: string;
  try {
    // Written only once listening, so a script that waits for admin.json can connect at once.
    adminFile = await writeAdminFile(config.dataDir, {
      url,
      caCertPem: pki.caCertPem,
      adminToken: admin.token,
    });
  } catch (e) {
    await app.close();
    throw e;
  }
  const running = new AbortController();
  const jobsDone = jobs.run(running.signal);
  const watching = protection.watch(running.signal);
  return {
    url,
    adminFile,
    caCertPem: pki.caCertPem,
    async close() {
      running.abort();
      await channel.close();
      await app.close();
      await jobs.shutdown();
      await jobsDone;
      await watching;
    },
  };
}

export async function startCoordinator(
  options: CoordinatorOptions,
  deps: StartDeps = {},
): Promise<StartedCoordinator> {
  const heartbeatEnv = process.env['SECONDSITE_HEARTBEAT_MS'];
  const scaleEnv = process.env['SECONDSITE_TIME_SCALE'];
  const traceEnv = process.env['SECONDSITE_TRACE_MESSAGES'];
  const windowEnv = process.env['SECONDSITE_MONITORING_WINDOW'];
  const config = compileConfig({
    testJobs: testJobsEnabled(),
    ...(heartbeatEnv ? { heartbeatMs: Number(heartbeatEnv) } : {}),
    ...(scaleEnv ? { timeScale: Number(scaleEnv) } : {}),
    ...(traceEnv ? { traceFile: traceEnv } : {}),
    ...(windowEnv
      ? { monitoringWindowMs: parseDuration('SECONDSITE_MONITORING_WINDOW', windowEnv) }
      : {}),
    ...options,
  });
  const clock = deps.clock ?? systemClock;
  const log = deps.log ?? createLogger({ name: 'coordinator' });
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const lock: DataLock = lockDataFolder(config.dataDir);
  let store: Store | undefined;
  try {
    store = await openLevelStore(join(config.dataDir, 'store'));
    await upgradeSchema(store);
    const served = await serve(config, store, clock, log, {
      ...(deps.providerCaLifetimeMs === undefined
        ? {}
        : { caLifetimeMs: deps.providerCaLifetimeMs }),
    });
    log.info({ url: served.url, dataDir: config.dataDir }, 'coordinator started');
    const opened = store;
    return {
      url: served.url,
      adminFile: served.adminFile,
      caCertPem: served.caCertPem,
      async stop() {
        await served.close();
        await opened.close();
        lock.release();
        log.info('coordinator stopped');
      },
    };
  } catch (e) {
    await store?.close().catch(() => undefined);
    lock.release();
    throw e;
  }
}

/**
 * `secondsite coordinator start`: runs until SIGTERM or SIGINT, then stops cleanly.
 * `onStarted` lets the caller print where the coordinator listens.
 */
export async function runCoordinator(
  options: CoordinatorOptions,
  onStarted: (c: StartedCoordinator) => void = () => undefined,
): Promise<void> {
  const signals = abortOnSignals();
  const coordinator = await startCoordinator(options);
  onStarted(coordinator);
  if (!signals.signal.aborted) {
    await new Promise<void>((resolve) =>
      signals.signal.addEventListener('abort', () => resolve(), { once: true }),
    );
  }
  await coordinator.stop();
}
