/**
 * The `provider.register` job (R3, R5): after the key was checked, issue the provider's
 * certificates, add the server to the vault, and sync all its clouds when asked. Each step is
 * idempotent; a coordinator restart resumes at the first unfinished one.
 */
import { z } from 'zod';
import { fingerprintOfPem } from '../../certs/inspect.ts';
import type { JobType, StepHandler } from '../jobs/job-types.ts';
import type { InventoryService } from '../inventory/inventory-service.ts';
import type { VaultService } from '../vaults/vault-service.ts';
import { identityNameOf } from '../domain/server.ts';
import type { ProviderCertificates, ProviderSigner } from './provider-signer.ts';
import type { Clock } from '../../common/time/clock.ts';

export const REGISTER_JOB_TYPE = 'provider.register';

const cloudSchema = z
  .object({
    name: z.string().min(1),
    hostGroups: z.array(z.string()),
    logicalNetworks: z.array(z.string()),
    vmNetworks: z.array(z.string()),
  })
  .strict();

/** uint64 on the wire is a decimal string (proto-loader `longs: String`). */
const uint64 = z
  .string()
  .regex(/^\d{1,20}$/, 'must be a decimal number')
  .transform(Number);

/** Empty proto3 strings mean "not given". */
const optionalText = z.string().transform((s) => (s === '' ? null : s));

const hostSchema = z
  .object({
    name: z.string().min(1),
    hostGroup: z.string().min(1),
    osVersion: optionalText,
    defaultStorage: optionalText,
    defaultFreeBytes: uint64,
  })
  .strict();

const vmNetworkSchema = z
  .object({
    name: z.string().min(1),
    logicalNetwork: z.string().min(1),
    subnets: z.array(z.object({ name: z.string().min(1), prefix: z.string() }).strict()),
  })
  .strict();

const classificationSchema = z
  .object({
    name: z.string().min(1),
    locations: z.array(
      z.object({ host: z.string().min(1), path: z.string().min(1), freeBytes: uint64 }).strict(),
    ),
  })
  .strict();

/**
 * A SiteInventory message as the coordinator stores it (domain/server.ts SiteInventory): the
 * fabric details are optional (older providers do not send them), numbers become numbers.
 */
export const inventorySchema = z
  .object({
    clouds: z.array(cloudSchema),
    hosts: z.array(z.string()),
    hostDetails: z.array(hostSchema).optional(),
    vmNetworks: z.array(vmNetworkSchema).optional(),
    classifications: z.array(classificationSchema).optional(),
  })
  .strict();

const inputSchema = z
  .object({
    registrationId: z.string().min(1),
    keyId: z.string().min(1),
    vaultId: z.string().min(1),
    serverName: z.string().min(1),
    clientCsrPem: z.string().min(1),
    caCsrPem: z.string().min(1),
    version: z.string(),
    syncClouds: z.enum(['all', 'none']),
    inventory: inventorySchema,
  })
  .strict();

export type RegisterJobInput = z.infer<typeof inputSchema>;
/** The job's input as submitted (the inventory in its wire form, before the schema converts it). */
export type RegisterJobRequest = z.input<typeof inputSchema>;

export interface RegisterJobDeps {
  readonly vaults: VaultService;
  readonly inventory: InventoryService;
  readonly signer: ProviderSigner;
  readonly clock: Clock;
}

export function registerJobType(deps: RegisterJobDeps): JobType<RegisterJobInput> {
  const handlers: Record<string, StepHandler<RegisterJobInput>> = {
    'issue-certificates': async ({ input }): Promise<ProviderCertificates> => {
      const vault = await deps.vaults.byId(input.vaultId);
      if (vault === undefined) throw new Error(`vault ${input.vaultId} is gone`);
      return deps.signer.sign({
        vault: vault.name,
        identityName: identityNameOf(input.serverName),
        clientCsrPem: input.clientCsrPem,
        caCsrPem: input.caCsrPem,
        now: deps.clock.now(),
      });
    },
    'add-server': async ({ input, results }) => {
      const certs = results['issue-certificates'] as ProviderCertificates;
      const s = await deps.inventory.putServer({
        clientCertFingerprint: fingerprintOfPem(certs.clientCertPem),
        vaultId: input.vaultId,
        name: input.serverName,
        registrationId: input.registrationId,
        version: input.version,
        inventory: input.inventory,
      });
      return { server: s.name };
    },
    'sync-clouds': async ({ input }) => {
      for (const cloud of input.inventory.clouds) {
        await deps.inventory.saveCloud(input.vaultId, input.serverName, cloud);
      }
      return { synced: input.inventory.clouds.map((c) => c.name) };
    },
  };
  return {
    type: REGISTER_JOB_TYPE,
    input: inputSchema,
    plan: (input) => [
      { name: 'issue-certificates' },
      { name: 'add-server' },
      ...(input.syncClouds === 'all' ? [{ name: 'sync-clouds' }] : []),
    ],
    handler: (name) => handlers[name],
  };
}
