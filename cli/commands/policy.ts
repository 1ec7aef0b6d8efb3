/**
 * `secondsite policy create | list | update | associate` (R11, R12; CLI.md "Policies and
 * mappings"). `update` changes settings of a policy, in use or not; when its protected items'
 * hosts must take the change (auth, port, cycles, retention, compression) it starts the job
 * "policy.apply" and follows it like the replication commands (`--no-wait` returns at once).
 */
import type { Command } from 'commander';
import type {
  AssociationView,
  JobView,
  PolicyCreateRequest,
  PolicyUpdateRequest,
  PolicyUpdateView,
  PolicyView,
} from '../../common/api-client/index.ts';
import { SecondsiteError } from '../../common/errors/errors.ts';
import { withAdminFlags, withApiClient, type AdminFlags } from '../admin-config.ts';
import { printJson, table } from '../output/table.ts';
import { namingFlags } from './flag-errors.ts';
import { report, waitForJob } from './job.ts';

/** Request field → the flag that sets it, so refusals name what the user typed. */
const CREATE_FLAGS: Readonly<Record<keyof PolicyCreateRequest, string>> = {
  name: '--name',
  hostVersion: '--host-version',
  auth: '--auth',
  port: '--port',
  copyFrequency: '--copy-frequency',
  retentionHours: '--retention-hours',
  appConsistentHours: '--app-consistent-hours',
  compression: '--compression',
  deleteReplicaOnDisable: '--delete-replica-on-disable',
  initial: '--initial',
  exportPath: '--export-path',
  importPath: '--import-path',
};

/** `policy update`: the settings a policy may change (coordinator/domain/policy.ts). */
const UPDATE_FLAGS: Readonly<Record<keyof PolicyUpdateRequest | 'name', string>> = {
  name: '--name',
  auth: '--auth',
  port: '--port',
  copyFrequency: '--copy-frequency',
  retentionHours: '--retention-hours',
  appConsistentHours: '--app-consistent-hours',
  compression: '--compression',
  deleteReplicaOnDisable: '--delete-replica-on-disable',
};

type UpdateFlags = AdminFlags & {
  vault: string;
  name: string;
  wait: boolean;
  timeout?: string;
} & { -readonly [K in keyof PolicyUpdateRequest]?: string };

const ASSOCIATE_FLAGS = {
  policy: '--policy',
  sourceCloud: '--source-cloud',
  targetCloud: '--target-cloud',
};

type CreateFlags = AdminFlags & { vault: string } & {
  -readonly [K in keyof PolicyCreateRequest]?: string;
};

/** The request: only the flags given, as typed (the coordinator validates and defaults). */
function createRequest(flags: CreateFlags): PolicyCreateRequest {
  const req: Record<string, string> = {};
  for (const field of Object.keys(CREATE_FLAGS) as (keyof PolicyCreateRequest)[]) {
    const value = flags[field];
    if (value !== undefined) req[field] = value;
  }
  // R11 calls app-consistent snapshots "off" or 1-12 hours; the API spells off as 0.
  if (req['appConsistentHours'] === 'off') req['appConsistentHours'] = '0';
  return req as unknown as PolicyCreateRequest;
}

function updateRequest(flags: UpdateFlags): PolicyUpdateRequest {
  const req: Record<string, string> = {};
  for (const field of Object.keys(UPDATE_FLAGS) as (keyof typeof UPDATE_FLAGS)[]) {
    const value = field === 'name' ? undefined : flags[field];
    if (value !== undefined) req[field] = value;
  }
  if (req['appConsistentHours'] === 'off') req['appConsistentHours'] = '0';
  return req as PolicyUpdateRequest;
}

/** Prints the update; with a job, follows it (JSON: `{policy, changed, job}`, job finished). */
async function reportUpdate(u: PolicyUpdateView, flags: UpdateFlags): Promise<void> {
  let job: JobView | null = u.job;
  if (!flags.json) {
    const what = u.changed.length === 0 ? 'nothing changed' : `changed ${u.changed.join(', ')}`;
    process.stdout.write(`policy ${u.policy.name}: ${what}\n${policiesTable([u.policy])}`);
    if (job !== null) process.stdout.write(`job ${job.id} (${job.type}) started\n`);
  }
  if (job !== null && flags.wait) job = await waitForJob(job.id, flags);
  if (flags.json) {
    printJson({ ...u, job });
    if (job !== null && (job.state === 'failed' || job.state === 'cancelled')) {
      process.stderr.write(`job ${job.id} ${job.state}\n`);
      process.exitCode = 1;
    }
  } else if (job !== null) report(job, flags);
}

function initialText(p: PolicyView): string {
  const i = p.initial;
  if (i.method === 'scheduled') return `scheduled ${i.at}`;
  if (i.method === 'offline') return `offline ${i.exportPath} → ${i.importPath}`;
  return 'network';
}

function policiesTable(policies: readonly PolicyView[]): string {
  if (policies.length === 0) return 'no policies\n';
  return table(
    ['NAME', 'HOST OS', 'AUTH', 'COPY', 'RETAIN', 'APP-CONS.', 'COMPRESS', 'INITIAL', 'CLOUDS'],
    policies.map((p) => [
      p.name,
      p.hostVersion ?? '-',
      `${p.auth}:${p.port}`,
      p.copyFrequency,
      `${p.retentionHours}h`,
      p.appConsistentHours === 0 ? 'off' : `${p.appConsistentHours}h`,
      p.compression ? 'on' : 'off',
      initialText(p),
      p.associations.map((a) => `${a.sourceCloud} → ${a.targetCloud}`).join(', ') || '-',
    ]),
  );
}

type AssociateFlags = AdminFlags & {
  vault: string;
  policy: string;
  sourceCloud: string;
  targetCloud: string;
};

export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('replication policies (R11, R12)');

  withAdminFlags(policy.command('create'))
    .description('create a replication policy')
    .requiredOption('--vault <name>', 'vault name')
    .requiredOption('--name <policy>', 'policy name')
    .option('--host-version <text>', 'host OS version of every host (default: the first pair’s)')
    .option('--auth <type>', 'certificate (port 8084) | kerberos (port 8083)')
    .option('--port <n>', 'replication port (default 8084, kerberos 8083)')
    .option('--copy-frequency <f>', '30s | 5m | 15m (default 5m)')
    .option('--retention-hours <n>', 'hours of recovery points kept, 0-24 (default 2)')
    .option('--app-consistent-hours <n>', 'off (0) or 1-12, less than the retention (default off)')
    .option('--compression <on|off>', 'compress data on the wire (default on)')
    .option(
      '--delete-replica-on-disable <on|off>',
      'delete the replica VM on disable (default off)',
    )
    .option('--initial <method>', 'network | scheduled:ISO-TIME | offline (default network)')
    .option('--export-path <dir>', 'offline: where the source host exports the initial copy')
    .option('--import-path <dir>', 'offline: where the target host imports it from')
    .action(async (flags: CreateFlags) => {
      const created = await namingFlags(CREATE_FLAGS, () =>
        withApiClient(flags.config, (api) => api.createPolicy(flags.vault, createRequest(flags))),
      );
      if (flags.json) printJson(created);
      else process.stdout.write(`created policy ${created.name}\n${policiesTable([created])}`);
    });

  withAdminFlags(policy.command('list'))
    .description('list the policies of a vault with their cloud pairs')
    .requiredOption('--vault <name>', 'vault name')
    .action(async (flags: AdminFlags & { vault: string }) => {
      const policies = await withApiClient(flags.config, (api) => api.listPolicies(flags.vault));
      if (flags.json) printJson(policies);
      else process.stdout.write(policiesTable(policies));
    });

  withAdminFlags(policy.command('update'))
    .description(
      'change settings of a policy; its protected items move to the new settings (a job)',
    )
    .requiredOption('--vault <name>', 'vault name')
    .requiredOption('--name <policy>', 'policy name')
    .option('--auth <type>', 'certificate (port 8084) | kerberos (port 8083): the channel')
    .option('--port <n>', 'replication port (default: the new auth’s, 8084 or 8083)')
    .option('--copy-frequency <f>', '30s | 5m | 15m')
    .option('--retention-hours <n>', 'hours of recovery points kept, 0-24')
    .option('--app-consistent-hours <n>', 'off (0) or 1-12, less than the retention')
    .option('--compression <on|off>', 'compress data on the wire')
    .option('--delete-replica-on-disable <on|off>', 'delete the replica VM on disable')
    .option('--no-wait', 'print the job id and return at once')
    .option('--timeout <duration>', 'give up waiting after this long (e.g. 10m)')
    .action(async (flags: UpdateFlags) => {
      const req = updateRequest(flags);
      if (Object.keys(req).length === 0) {
        const settings = Object.values(UPDATE_FLAGS).filter((f) => f !== '--name');
        throw new SecondsiteError(
          'SS_BAD_INPUT',
          `nothing to update: give at least one of ${settings.join(', ')}`,
          { flags: settings },
        );
      }
      const u = await namingFlags(UPDATE_FLAGS, () =>
        withApiClient(flags.config, (api) => api.updatePolicy(flags.vault, flags.name, req)),
      );
      await reportUpdate(u, flags);
    });

  withAdminFlags(policy.command('associate'))
    .description('protect a primary cloud into a secondary cloud under a policy')
    .requiredOption('--vault <name>', 'vault name')
    .requiredOption('--policy <name>', 'policy name')
    .requiredOption('--source-cloud <server/cloud>', 'the primary cloud, SERVER/CLOUD')
    .requiredOption('--target-cloud <server/cloud>', 'the secondary cloud, SERVER/CLOUD')
    .action(async (flags: AssociateFlags) => {
      const a: AssociationView = await namingFlags(ASSOCIATE_FLAGS, () =>
        withApiClient(flags.config, (api) =>
          api.associatePolicy(flags.vault, flags.policy, {
            sourceCloud: flags.sourceCloud,
            targetCloud: flags.targetCloud,
          }),
        ),
      );
      if (flags.json) printJson(a);
      else {
        process.stdout.write(
          `${a.sourceCloud} is protected into ${a.targetCloud} under policy ${a.policy}\n`,
        );
      }
    });
}
