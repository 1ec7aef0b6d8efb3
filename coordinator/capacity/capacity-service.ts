/**
 * `capacity plan` (R22): gathers each protected or candidate VM of the vault (or of one
 * SERVER/CLOUD) with its disks, the churn its host measured, its policy and priority, and
 * hands them to the pure planner (coordinator/domain/capacity.ts).
 *
 * Which VMs: every VM a host reports that is not a replica or a test copy. Its policy: its
 * item's when it is protected; else --policy; else the policy its cloud is associated with
 * as a source; else none. With --policy, protected VMs of other policies are left out.
 * A protected VM's compression is what its replica host counted it received (raw and on the
 * wire), once enough was carried (domain/capacity.ts).
 */
import { SecondsiteError, badInput } from '../../common/errors/errors.ts';
import type { CapacityPlanView } from '../../common/api-client/types.ts';
import {
  DEFAULT_LINK_BYTES_PER_SECOND,
  planCapacity,
  type CapacityVmInput,
} from '../domain/capacity.ts';
import { parseQualified, sameServer } from '../domain/mapping.ts';
import type { Policy } from '../domain/policy.ts';
import type { VmInventory } from '../inventory/vm-inventory.ts';
import type { ItemRepo } from '../replication/item-repo.ts';
import type { PolicySource } from '../replication/protection-service.ts';
import type { VaultService } from '../vaults/vault-service.ts';

export class CapacityService {
  constructor(
    private readonly d: {
      vaults: VaultService;
      vms: VmInventory;
      items: ItemRepo;
      policies: PolicySource;
    },
  ) {}

  async plan(
    vaultName: string,
    opts: { cloud?: string; policy?: string; bandwidth?: string },
  ): Promise<CapacityPlanView> {
    const vault = await this.d.vaults.byName(vaultName);
    const cloud = opts.cloud === undefined ? undefined : parseQualified('cloud', opts.cloud);
    const link = linkOf(opts.bandwidth);
    let named: Policy | undefined;
    if (opts.policy !== undefined) {
      named = await this.d.policies.get(vault.id, opts.policy);
      if (named === undefined) {
        throw new SecondsiteError('SS_NOT_FOUND', `no policy named ${opts.policy}`, {
          policy: opts.policy,
        });
      }
    }
    const items = (await this.d.items.list(vault.id)).filter((i) => i.state !== 'disabled');
    const inputs: CapacityVmInput[] = [];
    const hosts = await this.d.vms.hosts(vault.id);
    for (const h of hosts) {
      if (cloud && !(sameServer(h.server, cloud.server) && h.cloud === cloud.name)) continue;
      for (const vm of h.vms) {
        if (vm.role === 'replica' || vm.role === 'test' || vm.replication?.role === 'replica') {
          continue;
        }
        const item = items.find(
          (i) =>
            i.vm === vm.name && sameServer(i.sourceServer, h.server) && i.sourceHost === h.host,
        );
        let policy: Policy | undefined;
        if (item) {
          if (named && item.policy.toLowerCase() !== named.name.toLowerCase()) continue;
          policy = await this.d.policies.get(vault.id, item.policy);
        } else {
          policy =
            named ??
            (h.cloud === null
              ? undefined
              : (await this.d.policies.protectionOf(vault.id, h.server, h.cloud))?.policy);
        }
        inputs.push({
          vm: vm.name,
          server: h.server,
          cloud: h.cloud,
          host: h.host,
          protected: item !== undefined,
          policy: policy
            ? {
                name: policy.name,
                copyFrequency: policy.copyFrequency,
                retentionHours: policy.retentionHours,
                compression: policy.compression,
              }
            : null,
          priority: item?.priority ?? 'normal',
          disks: vm.disks.map((d) => ({ index: d.index, sizeBytes: d.sizeBytes })),
          churn: vm.churn ?? null,
          // What replication carried for it: its replica host's count.
          sent: item
            ? (hosts
                .find((t) => sameServer(t.server, item.targetServer) && t.host === item.targetHost)
                ?.vms.find((t) => t.name === vm.name)?.replication?.received ?? null)
            : null,
        });
      }
    }
    inputs.sort((a, b) => a.server.localeCompare(b.server) || a.vm.localeCompare(b.vm));
    return planCapacity(inputs, { linkBytesPerSecond: link });
  }
}

/** --bandwidth MB/s (10^6 bytes); default 100. */
function linkOf(text: string | undefined): number {
  if (text === undefined || text === '') return DEFAULT_LINK_BYTES_PER_SECOND;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) {
    throw badInput('bandwidth', `"${text}" is not a bandwidth in MB/s (a number above 0)`);
  }
  return Math.round(n * 1_000_000);
}
