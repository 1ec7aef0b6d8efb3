/**
 * Replication policies (R11) and their cloud pairs (R6, R12): the only writer of policy and
 * association records. The rules are the domain's (validatePolicy, checkAssociation); this
 * service gathers what they need from the store (the clouds' current pairing, their hosts'
 * OS versions from the servers' reported fabric) and stores the outcome atomically.
 *
 * Names the caller gives that do not exist (a policy, a server, a cloud) are bad input naming
 * the field: nothing is changed, and the message lists what does exist.
 */
import { SecondsiteError, badInput } from '../../common/errors/errors.ts';
import type { Clock } from '../../common/time/clock.ts';
import {
  formatQualified,
  parseQualified,
  sameQualified,
  type Qualified,
} from '../domain/mapping.ts';
import {
  checkAssociation,
  updatePolicy,
  validatePolicy,
  type Policy,
  type PolicyInput,
  type PolicyUpdate,
  type PolicyUpdateInput,
} from '../domain/policy.ts';
import type { CloudRecord, ServerRecord } from '../domain/server.ts';
import { hostOsViews } from '../inventory/fabric.ts';
import { collect, keys, type BatchOp, type Store } from '../store/store.ts';
import { cloudPairing, type AssociationRecord, type PolicyRecord } from './policy-records.ts';
import { Serial } from './serial.ts';

export interface AssociateInput {
  readonly policy: string;
  /** SERVER/CLOUD: the primary cloud, whose VMs are protected. */
  readonly sourceCloud: string;
  /** SERVER/CLOUD: the secondary cloud, where replicas go. */
  readonly targetCloud: string;
}

export interface Protection {
  readonly policy: Policy;
  readonly source: Qualified;
  readonly target: Qualified;
}

type CloudField = 'sourceCloud' | 'targetCloud';

export class PolicyService {
  private readonly serial = new Serial();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** Validates and stores a new policy; a name already used in the vault is a conflict. */
  async create(vaultId: string, input: PolicyInput): Promise<PolicyRecord> {
    const policy = validatePolicy(input, this.clock.now());
    return this.serial.run(vaultId, async () => {
      const existing = await this.get(vaultId, policy.name);
      if (existing !== undefined) {
        throw new SecondsiteError(
          'SS_CONFLICT',
          `a policy named "${existing.name}" already exists in this vault`,
          { policy: existing.name },
        );
      }
      const record: PolicyRecord = Object.freeze({
        ...policy,
        createdAt: new Date(this.clock.now()).toISOString(),
      });
      await this.store.put(keys.policy(vaultId, policy.name), record);
      return record;
    });
  }

  /**
   * Changes settings of a policy, in use or not (domain: updatePolicy says which may change
   * and validates the merged result). Stored only when something changed; the caller pairs
   * the policy's items again when `update.repair` (ProtectionService.onPolicyChange).
   */
  async update(
    vaultId: string,
    name: string,
    input: PolicyUpdateInput,
  ): Promise<{ record: PolicyRecord; update: PolicyUpdate }> {
    return this.serial.run(vaultId, async () => {
      const current = await this.get(vaultId, name);
      if (current === undefined) {
        const known = (await this.list(vaultId)).map((p) => p.name).join(', ') || 'none';
        throw badInput('name', `no policy named "${name}" in this vault (known: ${known})`);
      }
      const update = updatePolicy(current, input);
      if (update.changed.length === 0) return { record: current, update };
      const record: PolicyRecord = Object.freeze({
        ...current,
        ...update.policy,
        updatedAt: new Date(this.clock.now()).toISOString(),
      });
      await this.store.put(keys.policy(vaultId, current.name), record);
      return { record, update };
    });
  }

  /** The policy of that name (names compare case-insensitively), or undefined. */
  get(vaultId: string, name: string): Promise<PolicyRecord | undefined> {
    return this.store.get<PolicyRecord>(keys.policy(vaultId, name));
  }

  list(vaultId: string): Promise<PolicyRecord[]> {
    return collect<PolicyRecord>(this.store, keys.policyPrefix(vaultId));
  }

  /** Every cloud pair of the vault, in the primary cloud's key order. */
  associations(vaultId: string): Promise<AssociationRecord[]> {
    return collect<AssociationRecord>(this.store, keys.associationPrefix(vaultId));
  }

  /**
   * The association in which SERVER/CLOUD is the primary (source) cloud, with its policy;
   * undefined when the cloud protects nothing (unassociated, or only a secondary).
   */
  async protectionOf(
    vaultId: string,
    server: string,
    cloud: string,
  ): Promise<Protection | undefined> {
    const a = await this.store.get<AssociationRecord>(keys.association(vaultId, server, cloud));
    if (a === undefined) return undefined;
    const policy = await this.get(vaultId, a.policy);
    if (policy === undefined) return undefined;
    return Object.freeze({ policy, source: a.source, target: a.target });
  }

  /**
   * Associates a primary cloud with a secondary cloud under a policy (R6, R12). Repeating an
   * existing association returns it unchanged. A policy created without a host version is
   * pinned to the version of the first pair's hosts, in the same batch as the association.
   */
  async associate(vaultId: string, input: AssociateInput): Promise<AssociationRecord> {
    const source = parseQualified('sourceCloud', input.sourceCloud);
    const target = parseQualified('targetCloud', input.targetCloud);
    return this.serial.run(vaultId, async () => {
      const policy = await this.get(vaultId, input.policy);
      if (policy === undefined) {
        const known = (await this.list(vaultId)).map((p) => p.name).join(', ') || 'none';
        throw badInput(
          'policy',
          `no policy named "${input.policy}" in this vault (known: ${known})`,
        );
      }
      const src = await this.syncedCloud(vaultId, 'sourceCloud', source);
      const tgt = await this.syncedCloud(vaultId, 'targetCloud', target);
      const all = await this.associations(vaultId);
      const result = checkAssociation(
        policy,
        cloudPairing(all, src.cloud),
        cloudPairing(all, tgt.cloud),
        (c) => hostOsViews(sameQualified(c, src.cloud) ? src.server : tgt.server, c.name),
      );
      if (result.alreadyAssociated) {
        const existing = all.find((a) => sameQualified(a.source, src.cloud));
        if (existing !== undefined) return existing;
      }
      const record: AssociationRecord = Object.freeze({
        policy: policy.name,
        source: src.cloud,
        target: tgt.cloud,
        associatedAt: new Date(this.clock.now()).toISOString(),
      });
      const ops: BatchOp[] = [
        {
          type: 'put',
          key: keys.association(vaultId, src.cloud.server, src.cloud.name),
          value: record,
        },
      ];
      if (result.hostVersion !== policy.hostVersion) {
        ops.push({
          type: 'put',
          key: keys.policy(vaultId, policy.name),
          value: { ...policy, hostVersion: result.hostVersion },
        });
      }
      await this.store.batch(ops);
      return record;
    });
  }

  /**
   * A cloud named by the caller, with its server's record and the registered spelling. It must
   * be synced into the vault (R5): an unsynced cloud is not yet part of the vault's fabric.
   */
  private async syncedCloud(
    vaultId: string,
    field: CloudField,
    q: Qualified,
  ): Promise<{ server: ServerRecord; cloud: Qualified }> {
    const server = await this.store.get<ServerRecord>(keys.server(vaultId, q.server));
    if (server === undefined) {
      const known = (await collect<ServerRecord>(this.store, keys.serverPrefix(vaultId)))
        .map((s) => s.name)
        .join(', ');
      throw badInput(
        field,
        `no server named "${q.server}" in this vault (known: ${known || 'none'})`,
      );
    }
    const cloud: Qualified = Object.freeze({ server: server.name, name: q.name });
    if (!server.inventory.clouds.some((c) => c.name === q.name)) {
      const known = server.inventory.clouds.map((c) => c.name).join(', ') || 'none';
      throw badInput(
        field,
        `server ${server.name} has no cloud named "${q.name}" (known: ${known})`,
      );
    }
    const synced = await this.store.get<CloudRecord>(keys.cloud(vaultId, server.name, q.name));
    if (synced === undefined) {
      throw new SecondsiteError(
        'SS_CONFLICT',
        `cloud ${formatQualified(cloud)} is not synced into the vault; run ` +
          `secondsite cloud sync --server ${server.name} --cloud "${q.name}" first`,
        { cloud: formatQualified(cloud) },
      );
    }
    return { server, cloud };
  }
}
