/**
 * Recovery plans (R28) in the store: the only writer of plan records. The rules are the
 * domain's (coordinator/domain/recovery-plan.ts); this service gathers what they need (the
 * vault's replicated items, the cloud pairs its policies protect) and stores the outcome.
 * Changes to one vault's plans run one at a time, so two add-vm calls cannot both pass the
 * "VM in one group" check before either writes.
 *
 * Running a plan is a `plan.run` job (plan-job.ts). The job carries a snapshot of the plan
 * taken when it starts, so editing the plan never changes a run in progress, and a restarted
 * coordinator resumes the run it had.
 */
import { SecondsiteError, badInput } from '../../common/errors/errors.ts';
import type { Clock } from '../../common/time/clock.ts';
import { formatQualified, sameQualified, type Qualified } from '../domain/mapping.ts';
import {
  addAction,
  addVms,
  newPlan,
  type ActionInput,
  type PlanItem,
  type RecoveryPlan,
} from '../domain/recovery-plan.ts';
import { Serial } from '../policies/serial.ts';
import { collect, keys, type Store } from '../store/store.ts';

export interface PlanRecord extends RecoveryPlan {
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** What the service needs of replicated items (ProtectionService.items is one). */
export interface ItemSource {
  list(vaultId: string): Promise<readonly PlanItem[]>;
}

/** What it needs of cloud pairs (PolicyService is one). */
export interface PairSource {
  protectionOf(
    vaultId: string,
    server: string,
    cloud: string,
  ): Promise<{ readonly source: Qualified; readonly target: Qualified } | undefined>;
}

export class PlanService {
  private readonly serial = new Serial();

  constructor(
    private readonly deps: {
      readonly store: Store;
      readonly clock: Clock;
      readonly items: ItemSource;
      readonly pairs: PairSource;
    },
  ) {}

  /**
   * A new, empty plan. Its clouds must be a protected pair (source associated with target
   * under a policy): a plan fails over VMs that replicate between exactly these two clouds.
   */
  async create(
    vaultId: string,
    input: { name: unknown; sourceCloud: unknown; targetCloud: unknown },
  ): Promise<PlanRecord> {
    const plan = newPlan(input);
    const pair = await this.deps.pairs.protectionOf(
      vaultId,
      plan.sourceCloud.server,
      plan.sourceCloud.name,
    );
    if (pair === undefined) {
      throw badInput(
        'sourceCloud',
        `${formatQualified(plan.sourceCloud)} is not protected under any policy of this vault`,
      );
    }
    if (!sameQualified(pair.target, plan.targetCloud)) {
      throw badInput(
        'targetCloud',
        `${formatQualified(plan.sourceCloud)} replicates into ${formatQualified(pair.target)}, ` +
          `not ${formatQualified(plan.targetCloud)}`,
      );
    }
    return this.serial.run(vaultId, async () => {
      const existing = await this.get(vaultId, plan.name);
      if (existing !== undefined) {
        throw new SecondsiteError(
          'SS_CONFLICT',
          `a plan named "${existing.name}" already exists in this vault`,
          { plan: existing.name },
        );
      }
      // The registered spellings of the servers, so views match `cloud list`.
      const now = new Date(this.deps.clock.now()).toISOString();
      const record: PlanRecord = {
        ...plan,
        sourceCloud: pair.source,
        targetCloud: pair.target,
        createdAt: now,
        updatedAt: now,
      };
      await this.deps.store.put(keys.plan(vaultId, plan.name), record);
      return record;
    });
  }

  /** The plan of that name (names compare case-insensitively), or undefined. */
  get(vaultId: string, name: string): Promise<PlanRecord | undefined> {
    return this.deps.store.get<PlanRecord>(keys.plan(vaultId, name));
  }

  async require(vaultId: string, name: string): Promise<PlanRecord> {
    const plan = await this.get(vaultId, name);
    if (plan === undefined) {
      throw new SecondsiteError('SS_NOT_FOUND', `no plan named "${name}" in this vault`, {
        plan: name,
      });
    }
    return plan;
  }

  list(vaultId: string): Promise<PlanRecord[]> {
    return collect<PlanRecord>(this.deps.store, keys.planPrefix(vaultId));
  }

  /** Adds replicated VMs to group `group` (one past the last creates it). */
  addVms(
    vaultId: string,
    name: string,
    group: unknown,
    vms: readonly unknown[],
  ): Promise<PlanRecord> {
    return this.change(vaultId, name, async (plan) =>
      addVms(plan, group, vms, await this.deps.items.list(vaultId)),
    );
  }

  /** Appends a script or manual action before or after group `input.group`. */
  addAction(vaultId: string, name: string, input: ActionInput): Promise<PlanRecord> {
    return this.change(vaultId, name, async (plan) => addAction(plan, input));
  }

  private change(
    vaultId: string,
    name: string,
    fn: (plan: RecoveryPlan) => Promise<RecoveryPlan>,
  ): Promise<PlanRecord> {
    return this.serial.run(vaultId, async () => {
      const before = await this.require(vaultId, name);
      const after = await fn(before);
      const record: PlanRecord = {
        ...before,
        groups: after.groups,
        updatedAt: new Date(this.deps.clock.now()).toISOString(),
      };
      await this.deps.store.put(keys.plan(vaultId, before.name), record);
      return record;
    });
  }
}
