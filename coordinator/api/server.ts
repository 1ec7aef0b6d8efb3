/**
 * The REST/JSON API (/api/v1) on fastify, over HTTPS in production and through inject() in
 * tests. Every /api request must carry the admin token; errors leave through one handler
 * (http-errors.ts); each request is logged once, without its headers.
 *
 * Seam for the provider WebSocket (later work): `app.server` is the https.Server; its
 * 'upgrade' event can be handed to a `ws` server without touching these routes.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { Logger } from '../../common/log/log.ts';
import type { JobRunner } from '../jobs/job-runner.ts';
import type { VaultService } from '../vaults/vault-service.ts';
import type { AdminAuth } from './admin-auth.ts';
import { toHttpError } from './http-errors.ts';
import { jobRoutes } from './routes-jobs.ts';
import { vaultRoutes } from './routes-vaults.ts';
import { inventoryRoutes } from './routes-inventory.ts';
import { vmRoutes } from './routes-vms.ts';
import { replicationRoutes } from './routes-replication.ts';
import type { ProtectionService } from '../replication/protection-service.ts';
import type { VmInventory } from '../inventory/vm-inventory.ts';
import type { KeyService } from '../registration/key-service.ts';
import type { InventoryService } from '../inventory/inventory-service.ts';
import type { Clock } from '../../common/time/clock.ts';
import type { PolicyService } from '../policies/policy-service.ts';
import type { MapService } from '../mappings/map-service.ts';
import { policyRoutes } from './routes-policies.ts';
import { mapRoutes } from './routes-maps.ts';
import type { PlanService } from '../plans/plan-service.ts';
import { planRoutes } from './routes-plans.ts';
import { failoverRoutes } from './routes-failover.ts';
import type { FailoverService } from '../failover/failover-jobs.ts';
import type { CapacityService } from '../capacity/capacity-service.ts';
import type { BandwidthService } from '../replication/bandwidth-service.ts';
import { capacityRoutes } from './routes-capacity.ts';
import type { RevocationService } from '../revocation/revocation-service.ts';
import { revocationRoutes } from './routes-revocation.ts';

export interface ApiOptions {
  readonly vaults: VaultService;
  readonly jobs: JobRunner;
  readonly auth: AdminAuth;
  readonly log: Logger;
  /** Registers the test-only job route (SECONDSITE_TEST_JOBS=1). @default false */
  readonly testJobs?: boolean;
  /** PEM key and certificate; without them the server speaks plain HTTP (tests only). */
  readonly https?: {
    readonly key: string;
    readonly cert: string;
    /**
     * CA that client certificates must chain to. When set, the server asks every connection
     * for a certificate but lets those without one in (the admin API uses its token); the
     * agent channel checks `socket.authorized` per connection.
     */
    readonly clientCa?: string;
  };
  /** Registration keys, servers and clouds (with clock for key states). */
  readonly inventory?: { keys: KeyService; inventory: InventoryService; clock: Clock };
  /** VMs reported by hosts through their providers. */
  readonly vms?: VmInventory;
  /** Replication policies and their cloud pairs. */
  readonly policies?: PolicyService;
  /** Network and storage maps. */
  readonly maps?: MapService;
  /** Replicated items (R14, R20, R21). */
  readonly protection?: ProtectionService;
  /** Recovery plans (R28). */
  readonly plans?: PlanService;
  /** Failover, commit, reverse (R23–R27). */
  readonly failover?: FailoverService;
  /** R22: capacity planning and bandwidth control. */
  readonly capacity?: { capacity: CapacityService; bandwidth: BandwidthService };
  /** Issue #7: revoked host credentials (`host revoke`). */
  readonly revocation?: RevocationService;
  /** Sees every request body received (the privacy test's trace). */
  readonly trace?: (body: Buffer) => void;
}

/** Request bodies are small JSON documents; 1 MiB leaves ample room. */
const BODY_LIMIT = 1024 * 1024;

export function buildApi(opts: ApiOptions): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    ...(opts.https === undefined
      ? {}
      : {
          https: {
            key: opts.https.key,
            cert: opts.https.cert,
            ...(opts.https.clientCa === undefined
              ? {}
              : { ca: opts.https.clientCa, requestCert: true, rejectUnauthorized: false }),
          },
        }),
  }) as unknown as FastifyInstance;

  app.addHook('onRequest', async (request) => {
    opts.auth.check(request.headers.authorization);
  });

  if (opts.trace !== undefined) {
    const trace = opts.trace;
    app.addHook('preHandler', async (request) => {
      if (request.body !== undefined) trace(Buffer.from(JSON.stringify(request.body)));
    });
  }

  app.addHook('onResponse', async (request, reply) => {
    opts.log.info(
      { method: request.method, url: request.url, status: reply.statusCode },
      'request',
    );
  });

  app.setErrorHandler(async (error, request, reply) => {
    const { status, body, unexpected } = toHttpError(error);
    if (unexpected) opts.log.error({ err: error, url: request.url }, 'unexpected error');
    return reply.code(status).send(body);
  });

  app.setNotFoundHandler(async (request) => {
    throw new SecondsiteError('SS_NOT_FOUND', `no route ${request.method} ${request.url}`);
  });

  vaultRoutes(app, opts.vaults);
  jobRoutes(app, { jobs: opts.jobs, vaults: opts.vaults, testJobs: opts.testJobs ?? false });
  if (opts.inventory)
    inventoryRoutes(app, { ...opts.inventory, vaults: opts.vaults, jobs: opts.jobs });
  if (opts.vms) vmRoutes(app, { vaults: opts.vaults, vms: opts.vms });
  if (opts.protection) {
    replicationRoutes(app, { vaults: opts.vaults, protection: opts.protection });
  }
  if (opts.policies) {
    policyRoutes(app, {
      vaults: opts.vaults,
      policies: opts.policies,
      ...(opts.protection ? { protection: opts.protection } : {}),
    });
  }
  if (opts.maps) mapRoutes(app, { vaults: opts.vaults, maps: opts.maps });
  if (opts.plans) planRoutes(app, { vaults: opts.vaults, plans: opts.plans });
  if (opts.failover) failoverRoutes(app, { failover: opts.failover });
  if (opts.capacity) capacityRoutes(app, opts.capacity);
  if (opts.revocation) revocationRoutes(app, opts.revocation);
  return app;
}
