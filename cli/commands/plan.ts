/**
 * `secondsite plan create | add-vm | add-action | show | list` (R28; CLI.md "Failover and
 * plans"). Running a plan is `failover … --plan PLAN` (a job).
 */
import type { Command } from 'commander';
import type { PlanActionView, PlanView } from '../../common/api-client/index.ts';
import { badInput } from '../../common/errors/errors.ts';
import { withAdminFlags, withApiClient, type AdminFlags } from '../admin-config.ts';
import { printJson, table } from '../output/table.ts';
import { namingFlags } from './flag-errors.ts';
import { parseTimeout } from './job.ts';

const CREATE_FLAGS = {
  name: '--name',
  sourceCloud: '--source-cloud',
  targetCloud: '--target-cloud',
};
const VM_FLAGS = { group: '--group', vms: 'VM' };
const ACTION_FLAGS = {
  group: '--group',
  side: '--before/--after',
  script: '--script',
  manual: '--manual',
  timeoutSeconds: '--timeout',
  timeout: '--timeout',
};

function actionText(a: PlanActionView): string {
  return a.kind === 'script'
    ? `script ${a.path} (timeout ${a.timeoutSeconds}s)`
    : `manual: ${a.text}`;
}

function planDetail(p: PlanView): string {
  const head = `plan ${p.name}: ${p.sourceCloud} → ${p.targetCloud}\n`;
  if (p.groups.length === 0) return `${head}no groups yet\n`;
  const rows = p.groups.flatMap((g) => [
    ...g.before.map((a) => [String(g.group), 'before', actionText(a)]),
    [String(g.group), 'VMs', g.vms.join(', ') || '-'],
    ...g.after.map((a) => [String(g.group), 'after', actionText(a)]),
  ]);
  return head + table(['GROUP', 'STEP', 'WHAT'], rows);
}

function plansTable(plans: readonly PlanView[]): string {
  if (plans.length === 0) return 'no plans\n';
  return table(
    ['NAME', 'SOURCE', 'TARGET', 'GROUPS', 'VMS'],
    plans.map((p) => [
      p.name,
      p.sourceCloud,
      p.targetCloud,
      String(p.groups.length),
      String(p.groups.reduce((n, g) => n + g.vms.length, 0)),
    ]),
  );
}

type ActionFlags = AdminFlags & {
  vault: string;
  plan: string;
  group: string;
  before?: boolean;
  after?: boolean;
  script?: string;
  manual?: string;
  timeout?: string;
};

/** The action request; refusals that the flags alone decide happen here (exit 2). */
function actionRequest(flags: ActionFlags) {
  if (Boolean(flags.before) === Boolean(flags.after)) {
    throw badInput('side', 'give exactly one of --before and --after', {
      flag: '--before/--after',
    });
  }
  let timeoutSeconds: number | undefined;
  if (flags.timeout !== undefined) {
    const ms = parseTimeout(flags.timeout);
    if (ms % 1000 !== 0) throw badInput('timeout', 'whole seconds only', { flag: '--timeout' });
    timeoutSeconds = ms / 1000;
  }
  return {
    group: flags.group,
    side: flags.before ? ('before' as const) : ('after' as const),
    ...(flags.script === undefined ? {} : { script: flags.script }),
    ...(flags.manual === undefined ? {} : { manual: flags.manual }),
    ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
  };
}

export function registerPlanCommands(program: Command): void {
  const plan = program.command('plan').description('recovery plans: ordered groups of VMs (R28)');

  withAdminFlags(plan.command('create'))
    .description('create an empty recovery plan for a protected cloud pair')
    .requiredOption('--vault <name>', 'vault name')
    .requiredOption('--name <plan>', 'plan name')
    .requiredOption('--source-cloud <server/cloud>', 'the primary cloud, SERVER/CLOUD')
    .requiredOption('--target-cloud <server/cloud>', 'the secondary cloud, SERVER/CLOUD')
    .action(
      async (
        flags: AdminFlags & {
          vault: string;
          name: string;
          sourceCloud: string;
          targetCloud: string;
        },
      ) => {
        const created = await namingFlags(CREATE_FLAGS, () =>
          withApiClient(flags.config, (api) =>
            api.createPlan(flags.vault, {
              name: flags.name,
              sourceCloud: flags.sourceCloud,
              targetCloud: flags.targetCloud,
            }),
          ),
        );
        if (flags.json) printJson(created);
        else process.stdout.write(`created ${planDetail(created)}`);
      },
    );

  withAdminFlags(plan.command('add-vm'))
    .description('add replicated VMs to a group (one past the last group creates it)')
    .requiredOption('--vault <name>', 'vault name')
    .requiredOption('--plan <plan>', 'plan name')
    .requiredOption('--group <n>', 'group number, 1-based')
    .argument('<vm...>', 'VM names (replicated items of the plan’s clouds)')
    .action(
      async (vms: string[], flags: AdminFlags & { vault: string; plan: string; group: string }) => {
        const updated = await namingFlags(VM_FLAGS, () =>
          withApiClient(flags.config, (api) =>
            api.addPlanVms(flags.vault, flags.plan, flags.group, vms),
          ),
        );
        if (flags.json) printJson(updated);
        else process.stdout.write(planDetail(updated));
      },
    );

  withAdminFlags(plan.command('add-action'))
    .description('add a script or a manual action before or after a group')
    .requiredOption('--vault <name>', 'vault name')
    .requiredOption('--plan <plan>', 'plan name')
    .requiredOption('--group <n>', 'group number, 1-based')
    .option('--before', 'run the action before the group’s VMs start')
    .option('--after', 'run the action after all the group’s VMs run')
    .option('--script <path>', 'absolute path of a script on the coordinator’s machine')
    .option('--manual <text>', 'an instruction; the job waits until `secondsite job resume`')
    .option('--timeout <duration>', 'scripts: stop and fail after this long (default 10m)')
    .action(async (flags: ActionFlags) => {
      const updated = await namingFlags(ACTION_FLAGS, () => {
        const request = actionRequest(flags);
        return withApiClient(flags.config, (api) =>
          api.addPlanAction(flags.vault, flags.plan, request),
        );
      });
      if (flags.json) printJson(updated);
      else process.stdout.write(planDetail(updated));
    });

  withAdminFlags(plan.command('show'))
    .description('show one recovery plan: its groups, VMs and actions in run order')
    .requiredOption('--vault <name>', 'vault name')
    .argument('<plan>', 'plan name')
    .action(async (name: string, flags: AdminFlags & { vault: string }) => {
      const p = await withApiClient(flags.config, (api) => api.getPlan(flags.vault, name));
      if (flags.json) printJson(p);
      else process.stdout.write(planDetail(p));
    });

  withAdminFlags(plan.command('list'))
    .description('list the recovery plans of a vault (with a name: that plan, as show)')
    .requiredOption('--vault <name>', 'vault name')
    .argument('[plan]', 'plan name')
    .action(async (name: string | undefined, flags: AdminFlags & { vault: string }) => {
      if (name !== undefined) {
        const p = await withApiClient(flags.config, (api) => api.getPlan(flags.vault, name));
        if (flags.json) printJson(p);
        else process.stdout.write(planDetail(p));
        return;
      }
      const plans = await withApiClient(flags.config, (api) => api.listPlans(flags.vault));
      if (flags.json) printJson(plans);
      else process.stdout.write(plansTable(plans));
    });
}
