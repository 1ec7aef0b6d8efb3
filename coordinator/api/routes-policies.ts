/** Replication policies and their cloud pairs (R11, R12). */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type {
  AssociationView,
  PolicyUpdateView,
  PolicyView,
} from '../../common/api-client/types.ts';
import { SecondsiteError } from '../../common/errors/errors.ts';
import { formatQualified } from '../domain/mapping.ts';
import type { AssociationRecord, PolicyRecord } from '../policies/policy-records.ts';
import type { PolicyService } from '../policies/policy-service.ts';
import type { ProtectionService } from '../replication/protection-service.ts';
import type { VaultService } from '../vaults/vault-service.ts';
import { route } from './route.ts';
import { jobView } from './views.ts';

const vaultParams = z.object({ vault: z.string() }).strict();

/**
 * Every R11 field, loosely typed: validatePolicy checks values and names the allowed ones, so
 * the schema only refuses keys it does not know.
 */
const policyBody = z
  .object({
    name: z.unknown(),
    hostVersion: z.unknown(),
    auth: z.unknown(),
    port: z.unknown(),
    copyFrequency: z.unknown(),
    retentionHours: z.unknown(),
    appConsistentHours: z.unknown(),
    compression: z.unknown(),
    deleteReplicaOnDisable: z.unknown(),
    initial: z.unknown(),
    exportPath: z.unknown(),
    importPath: z.unknown(),
  })
  .partial()
  .strict();

/** `policy update`: only the fields a policy may change (domain UPDATABLE_FIELDS). */
const policyUpdateBody = z
  .object({
    auth: z.unknown(),
    port: z.unknown(),
    copyFrequency: z.unknown(),
    retentionHours: z.unknown(),
    appConsistentHours: z.unknown(),
    compression: z.unknown(),
    deleteReplicaOnDisable: z.unknown(),
  })
  .partial()
  .strict();

export function policyView(p: PolicyRecord, all: readonly AssociationRecord[]): PolicyView {
  return {
    name: p.name,
    hostVersion: p.hostVersion,
    auth: p.auth,
    port: p.port,
    copyFrequency: p.copyFrequency,
    retentionHours: p.retentionHours,
    appConsistentHours: p.appConsistentHours,
    compression: p.compression,
    deleteReplicaOnDisable: p.deleteReplicaOnDisable,
    initial: p.initial,
    createdAt: p.createdAt,
    ...(p.updatedAt === undefined ? {} : { updatedAt: p.updatedAt }),
    associations: all
      .filter((a) => a.policy.toLowerCase() === p.name.toLowerCase())
      .map((a) => ({
        sourceCloud: formatQualified(a.source),
        targetCloud: formatQualified(a.target),
      })),
  };
}

function associationView(a: AssociationRecord): AssociationView {
  return {
    policy: a.policy,
    sourceCloud: formatQualified(a.source),
    targetCloud: formatQualified(a.target),
    associatedAt: a.associatedAt,
  };
}

export function policyRoutes(
  app: FastifyInstance,
  deps: { vaults: VaultService; policies: PolicyService; protection?: ProtectionService },
): void {
  const { vaults, policies, protection } = deps;
  route(app, {
    method: 'POST',
    url: '/api/v1/vaults/:vault/policies',
    params: vaultParams,
    body: policyBody,
    status: 201,
    handler: async ({ params, body }): Promise<PolicyView> => {
      const vault = await vaults.byName(params.vault);
      return policyView(await policies.create(vault.id, body), []);
    },
  });
  route(app, {
    method: 'GET',
    url: '/api/v1/vaults/:vault/policies',
    params: vaultParams,
    handler: async ({ params }): Promise<{ policies: PolicyView[] }> => {
      const vault = await vaults.byName(params.vault);
      const all = await policies.associations(vault.id);
      const list = await policies.list(vault.id);
      return { policies: list.map((p) => policyView(p, all)) };
    },
  });
  route(app, {
    method: 'GET',
    url: '/api/v1/vaults/:vault/policies/:policy',
    params: z.object({ vault: z.string(), policy: z.string() }).strict(),
    handler: async ({ params }): Promise<PolicyView> => {
      const vault = await vaults.byName(params.vault);
      const p = await policies.get(vault.id, params.policy);
      if (p === undefined) {
        throw new SecondsiteError('SS_NOT_FOUND', `no policy named "${params.policy}"`, {
          policy: params.policy,
        });
      }
      return policyView(p, await policies.associations(vault.id));
    },
  });
  route(app, {
    method: 'PATCH',
    url: '/api/v1/vaults/:vault/policies/:policy',
    params: z.object({ vault: z.string(), policy: z.string() }).strict(),
    body: policyUpdateBody,
    handler: async ({ params, body }): Promise<PolicyUpdateView> => {
      const vault = await vaults.byName(params.vault);
      const { record, update } = await policies.update(vault.id, params.policy, body);
      // Stored first: the job's steps read the policy as stored when they run.
      const job = update.repair ? await protection?.onPolicyChange(vault.id, record.name) : null;
      return {
        policy: policyView(record, await policies.associations(vault.id)),
        changed: update.changed,
        job: job == null ? null : jobView(job, vault.name),
      };
    },
  });
  route(app, {
    method: 'POST',
    url: '/api/v1/vaults/:vault/policies/:policy/associations',
    params: z.object({ vault: z.string(), policy: z.string() }).strict(),
    body: z.object({ sourceCloud: z.string(), targetCloud: z.string() }).strict(),
    status: 201,
    handler: async ({ params, body }): Promise<AssociationView> => {
      const vault = await vaults.byName(params.vault);
      const a = await policies.associate(vault.id, { policy: params.policy, ...body });
      return associationView(a);
    },
  });
}
