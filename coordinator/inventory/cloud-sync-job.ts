/**
 * The `cloud.sync` job (R5): ask the server's provider for one cloud's metadata (a command with
 * an id made from the job, so a resend after any restart is the same command), then save it.
 */
import { z } from 'zod';
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { CloudInfo } from '../../common/wire/agent-channel-messages.ts';
import type { ChannelHub } from '../channel/channel-hub.ts';
import { identityNameOf } from '../domain/server.ts';
import type { JobType, StepHandler } from '../jobs/job-types.ts';
import type { InventoryService } from './inventory-service.ts';

export const CLOUD_SYNC_JOB_TYPE = 'cloud.sync';

const inputSchema = z
  .object({ vaultId: z.string().min(1), server: z.string().min(1), cloud: z.string().min(1) })
  .strict();

export type CloudSyncInput = z.infer<typeof inputSchema>;

export function cloudSyncJobType(deps: {
  hub: ChannelHub;
  inventory: InventoryService;
  /** How long a step waits for the provider's answer. @default 60 s */
  commandTimeoutMs?: number;
}): JobType<CloudSyncInput> {
  const handlers: Record<string, StepHandler<CloudSyncInput>> = {
    'fetch-cloud': async ({ job, input, signal }): Promise<CloudInfo> => {
      const result = await deps.hub.sendCommand({
        vaultId: input.vaultId,
        identityName: identityNameOf(input.server),
        commandId: `${job.id}.fetch-cloud`,
        command: { syncCloud: { cloud: input.cloud } },
        timeoutMs: deps.commandTimeoutMs ?? 60_000,
        signal,
      });
      if (result.cloud === undefined) {
        throw new SecondsiteError('SS_PROTOCOL', 'the provider answered without a cloud');
      }
      return result.cloud;
    },
    'save-cloud': async ({ input, results }) => {
      const cloud = results['fetch-cloud'] as CloudInfo;
      await deps.inventory.saveCloud(input.vaultId, input.server, {
        name: cloud.name,
        hostGroups: cloud.hostGroups ?? [],
        logicalNetworks: cloud.logicalNetworks ?? [],
        vmNetworks: cloud.vmNetworks ?? [],
      });
      return { cloud: cloud.name, hostGroups: cloud.hostGroups ?? [] };
    },
  };
  return {
    type: CLOUD_SYNC_JOB_TYPE,
    input: inputSchema,
    plan: () => [{ name: 'fetch-cloud' }, { name: 'save-cloud' }],
    handler: (name) => handlers[name],
  };
}
