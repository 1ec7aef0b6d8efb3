/**
 * Recovery plans (R28): VMs in ordered groups, with scripts and manual actions before and after
 * each group, run as one job for a whole application. Pure: the service (coordinator/plans/)
 * hands in the replicated items it read; nothing here reads a clock, the store or a file.
 *
 * Rules kept here:
 * - groups are numbered 1..N without gaps. Naming group N+1 (one past the last) creates it;
 *   a number further out is refused, so a typo cannot leave an empty group 7 behind;
 * - a VM is in at most one group of a plan (adding it to its own group again changes nothing);
 * - a VM must be a replicated item whose source and target clouds are the plan's: a plan fails
 *   over one cloud pair, so one recovery-point choice and one target site fit every VM;
 * - a script is an absolute path on the coordinator's machine (it runs there, with no shell);
 * - a group may hold actions and no VM (a "wait for the network team" group).
 *
 * How a plan operation becomes job steps (planSteps), for each group G in order:
 *   1. `before:G:I` for each before-action I (script → automatic step, manual → a `manual`
 *      step that parks the job in `waiting` until `job resume`);
 *   2. `group:G`: ONE step for all the group's VMs. The job runner runs steps one after the
 *      other, so one step per VM would start the VMs of a group in series; one step whose
 *      handler runs them concurrently gives R28's "VMs within a group start in parallel", and
 *      its completion is exactly "every VM of the group is running", the condition for the
 *      next group to start. The price: after a restart mid-group the whole step runs again, so
 *      the per-VM operation must be idempotent (a VM already failed over is left as it is);
 *   3. `after:G:I` for each after-action I.
 * Actions run for the failovers (test, planned, unplanned), which bring an application up;
 * commit, reverse and cleanup-test only walk the groups' VMs in order: an operator's "start
 * the DB cluster" script or "check the firewall" instruction has no meaning for them.
 */
import { badInput, SecondsiteError } from '../../common/errors/errors.ts';
import type { StepPlan } from './job.ts';
import { formatQualified, parseQualified, sameQualified, type Qualified } from './mapping.ts';

export const PLAN_OPERATIONS = [
  'test',
  'planned',
  'unplanned',
  'commit',
  'reverse',
  'cleanup-test',
] as const;
export type PlanOperation = (typeof PLAN_OPERATIONS)[number];

/** The operations that run the groups' before and after actions. */
const WITH_ACTIONS: ReadonlySet<PlanOperation> = new Set(['test', 'planned', 'unplanned']);

/** Scripts stop after 10 minutes unless the action says otherwise. */
export const DEFAULT_SCRIPT_TIMEOUT_SECONDS = 600;
/** One day: longer than any start-up script should take; a hung one must not hold a plan. */
export const MAX_SCRIPT_TIMEOUT_SECONDS = 86_400;
const NAME_MAX = 80;
const MANUAL_TEXT_MAX = 2000;
const PATH_MAX = 4096;
/** Enough for any application; keeps a plan (and its job's input) a small document. */
const MAX_GROUPS = 50;
const MAX_ACTIONS_PER_SIDE = 20;

export type PlanAction =
  | { readonly kind: 'script'; readonly path: string; readonly timeoutSeconds: number }
  | { readonly kind: 'manual'; readonly text: string };

export type ActionSide = 'before' | 'after';

export interface PlanGroup {
  /** 1-based, equal to its position + 1. */
  readonly group: number;
  readonly vms: readonly string[];
  readonly before: readonly PlanAction[];
  readonly after: readonly PlanAction[];
}

export interface RecoveryPlan {
  readonly name: string;
  readonly sourceCloud: Qualified;
  readonly targetCloud: Qualified;
  readonly groups: readonly PlanGroup[];
}

/** What plan validation needs of a replicated item (ItemRecord has these fields). */
export interface PlanItem {
  readonly vm: string;
  readonly sourceServer: string;
  readonly sourceCloud: string;
  readonly targetServer: string;
  readonly targetCloud: string;
}

function text(field: string, value: unknown, max: number): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw badInput(field, 'is required and must be text');
  }
  const v = value.trim();
  if (v.length > max) throw badInput(field, `longer than ${max} characters`);
  if ([...v].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) {
    throw badInput(field, 'must not contain control characters');
  }
  return v;
}

/** A new plan with no groups yet; the clouds are SERVER/CLOUD. */
export function newPlan(input: {
  name: unknown;
  sourceCloud: unknown;
  targetCloud: unknown;
}): RecoveryPlan {
  const name = text('name', input.name, NAME_MAX);
  if (name.includes('/')) throw badInput('name', 'must not contain "/"');
  const sourceCloud = parseQualified('sourceCloud', text('sourceCloud', input.sourceCloud, 300));
  const targetCloud = parseQualified('targetCloud', text('targetCloud', input.targetCloud, 300));
  if (sameQualified(sourceCloud, targetCloud)) {
    throw badInput('targetCloud', 'must differ from the source cloud');
  }
  const plan: RecoveryPlan = { name, sourceCloud, targetCloud, groups: [] };
  return Object.freeze(plan);
}

/**
 * The plan's group `n`, created (empty) when n is one past the last group. Refuses anything
 * else: 0, fractions, or a gap after the last group.
 */
function groupIndex(plan: RecoveryPlan, n: unknown): number {
  const last = plan.groups.length;
  const num = typeof n === 'string' && /^\d+$/.test(n.trim()) ? Number(n) : n;
  if (typeof num !== 'number' || !Number.isInteger(num) || num < 1 || num > last + 1) {
    const allowed =
      last === 0 ? '1 (the first group)' : `1-${last}, or ${last + 1} for a new group`;
    throw badInput('group', `"${String(n)}" is not a group of plan ${plan.name} (use ${allowed})`);
  }
  if (num > MAX_GROUPS) throw badInput('group', `a plan has at most ${MAX_GROUPS} groups`);
  return num - 1;
}

function withGroup(
  plan: RecoveryPlan,
  index: number,
  change: (g: PlanGroup) => PlanGroup,
): RecoveryPlan {
  const existing = plan.groups[index] ?? { group: index + 1, vms: [], before: [], after: [] };
  const groups = [...plan.groups];
  groups[index] = change(existing);
  return Object.freeze({ ...plan, groups });
}

/**
 * Adds VMs to group `group`. Each must be a replicated item of the plan's cloud pair and in no
 * other group of the plan; VMs already in this group are kept once.
 */
export function addVms(
  plan: RecoveryPlan,
  group: unknown,
  vms: readonly unknown[],
  items: readonly PlanItem[],
): RecoveryPlan {
  const index = groupIndex(plan, group);
  if (vms.length === 0) throw badInput('vms', 'name at least one VM');
  const names = vms.map((v) => text('vms', v, 200));
  for (const vm of names) {
    const item = items.find((i) => i.vm === vm);
    if (item === undefined) {
      throw badInput('vms', `${vm} is not a replicated VM of this vault`, { vm });
    }
    const source = { server: item.sourceServer, name: item.sourceCloud };
    const target = { server: item.targetServer, name: item.targetCloud };
    if (!sameQualified(source, plan.sourceCloud) || !sameQualified(target, plan.targetCloud)) {
      throw badInput(
        'vms',
        `${vm} replicates ${formatQualified(source)} → ${formatQualified(target)}, not the ` +
          `plan's ${formatQualified(plan.sourceCloud)} → ${formatQualified(plan.targetCloud)}`,
        { vm },
      );
    }
    const other = plan.groups.find((g, i) => i !== index && g.vms.includes(vm));
    if (other !== undefined) {
      throw badInput('vms', `${vm} is already in group ${other.group} of plan ${plan.name}`, {
        vm,
        group: other.group,
      });
    }
  }
  return withGroup(plan, index, (g) => ({
    ...g,
    vms: [...g.vms, ...names.filter((vm, i) => !g.vms.includes(vm) && names.indexOf(vm) === i)],
  }));
}

export interface ActionInput {
  readonly group: unknown;
  readonly side: unknown;
  /** Exactly one of script and manual. */
  readonly script?: unknown;
  readonly manual?: unknown;
  /** Scripts only. @default DEFAULT_SCRIPT_TIMEOUT_SECONDS */
  readonly timeoutSeconds?: unknown;
}

function actionOf(input: ActionInput): PlanAction {
  if ((input.script === undefined) === (input.manual === undefined)) {
    throw badInput('script', 'give exactly one of a script path and a manual instruction');
  }
  if (input.manual !== undefined) {
    if (input.timeoutSeconds !== undefined) {
      throw badInput('timeoutSeconds', 'applies to scripts only');
    }
    return { kind: 'manual', text: text('manual', input.manual, MANUAL_TEXT_MAX) };
  }
  const path = text('script', input.script, PATH_MAX);
  if (!path.startsWith('/')) throw badInput('script', `"${path}" is not an absolute path`);
  const raw = input.timeoutSeconds ?? DEFAULT_SCRIPT_TIMEOUT_SECONDS;
  const timeoutSeconds = typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : raw;
  if (
    typeof timeoutSeconds !== 'number' ||
    !Number.isInteger(timeoutSeconds) ||
    timeoutSeconds < 1 ||
    timeoutSeconds > MAX_SCRIPT_TIMEOUT_SECONDS
  ) {
    throw badInput(
      'timeoutSeconds',
      `"${String(raw)}" is not a whole number of seconds 1-${MAX_SCRIPT_TIMEOUT_SECONDS}`,
    );
  }
  return { kind: 'script', path, timeoutSeconds };
}

/** Appends a script or manual action before or after group `group`. */
export function addAction(plan: RecoveryPlan, input: ActionInput): RecoveryPlan {
  if (input.side !== 'before' && input.side !== 'after') {
    throw badInput('side', `"${String(input.side)}" is not before or after`);
  }
  const side: ActionSide = input.side;
  const index = groupIndex(plan, input.group);
  const action = actionOf(input);
  if ((plan.groups[index]?.[side].length ?? 0) >= MAX_ACTIONS_PER_SIDE) {
    throw badInput('group', `a group has at most ${MAX_ACTIONS_PER_SIDE} ${side}-actions`);
  }
  return withGroup(plan, index, (g) => ({ ...g, [side]: [...g[side], action] }));
}

/** A step of a plan job: what the job's handlers need to find the work of a step name. */
export type PlanStep =
  | {
      readonly kind: 'action';
      readonly group: number;
      readonly side: ActionSide;
      readonly index: number;
    }
  | { readonly kind: 'group'; readonly group: number };

export function stepName(step: PlanStep): string {
  return step.kind === 'group'
    ? `group:${step.group}`
    : `${step.side}:${step.group}:${step.index + 1}`;
}

/** The inverse of stepName, or undefined for a name no plan produces. */
export function parseStepName(name: string): PlanStep | undefined {
  const g = /^group:(\d+)$/.exec(name);
  if (g) return { kind: 'group', group: Number(g[1]) };
  const a = /^(before|after):(\d+):(\d+)$/.exec(name);
  if (a) {
    const side = a[1] as ActionSide;
    return { kind: 'action', group: Number(a[2]), side, index: Number(a[3]) - 1 };
  }
  return undefined;
}

/** The action a step name stands for in this plan, or undefined. */
export function actionAt(plan: RecoveryPlan, step: PlanStep): PlanAction | undefined {
  if (step.kind !== 'action') return undefined;
  return plan.groups[step.group - 1]?.[step.side][step.index];
}

function instructionOf(group: number, side: ActionSide, text: string): string {
  return `${side} group ${group}: ${text}`;
}

/**
 * The job steps of running `operation` for the whole plan (see the top of this file). A plan
 * with no VM is refused: there would be nothing to fail over.
 */
export function planSteps(plan: RecoveryPlan, operation: PlanOperation): StepPlan[] {
  if (!plan.groups.some((g) => g.vms.length > 0)) {
    throw new SecondsiteError('SS_CONFLICT', `plan ${plan.name} has no VMs; add some first`, {
      plan: plan.name,
    });
  }
  const actions = WITH_ACTIONS.has(operation);
  const steps: StepPlan[] = [];
  const sideSteps = (g: PlanGroup, side: ActionSide): void => {
    if (!actions) return;
    g[side].forEach((a, index) => {
      const name = stepName({ kind: 'action', group: g.group, side, index });
      steps.push(
        a.kind === 'manual'
          ? { name, kind: 'manual', instruction: instructionOf(g.group, side, a.text) }
          : { name },
      );
    });
  };
  for (const g of plan.groups) {
    sideSteps(g, 'before');
    if (g.vms.length > 0) steps.push({ name: stepName({ kind: 'group', group: g.group }) });
    sideSteps(g, 'after');
  }
  return steps;
}

/** Every VM of the plan, group by group. */
export function planVms(plan: RecoveryPlan): string[] {
  return plan.groups.flatMap((g) => g.vms);
}
