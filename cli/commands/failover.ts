/**
 * `secondsite failover test | cleanup-test | planned | unplanned | commit | change-point`
 * (R23–R26, R28): each starts a job for one VM (`--vm`) or a recovery plan (`--plan`), prints
 * its id and follows it (`--no-wait` returns at once; `--json` prints the finished job).
 */
import type { Command } from 'commander';
import type { FailoverBody, FailoverOperation } from '../../common/api-client/index.ts';
import { badInput } from '../../common/errors/errors.ts';
import { withAdminFlags, withApiClient, type AdminFlags } from '../admin-config.ts';
import { report, waitForJob } from './job.ts';

type Flags = AdminFlags & {
  vault: string;
  vm?: string;
  plan?: string;
  recoveryPoint?: string;
  network?: string;
  shutdownSource?: string;
  notes?: string;
  wait: boolean;
  timeout?: string;
};

function bodyOf(f: Flags): FailoverBody {
  if (f.shutdownSource !== undefined && !['on', 'off'].includes(f.shutdownSource)) {
    throw badInput('shutdownSource', `"${f.shutdownSource}" is not one of on, off`);
  }
  return {
    ...(f.vm === undefined ? {} : { vm: f.vm }),
    ...(f.plan === undefined ? {} : { plan: f.plan }),
    ...(f.recoveryPoint === undefined ? {} : { recoveryPoint: f.recoveryPoint }),
    ...(f.network === undefined ? {} : { network: f.network }),
    ...(f.shutdownSource === undefined ? {} : { shutdownSource: f.shutdownSource === 'on' }),
    ...(f.notes === undefined ? {} : { notes: f.notes }),
  };
}

/** Starts the operation's job and follows it. */
export async function runFailover(op: FailoverOperation, flags: Flags): Promise<void> {
  const body = bodyOf(flags);
  await withApiClient(flags.config, async (api) => {
    const job = await api.failover(flags.vault, op, body);
    if (!flags.json) process.stdout.write(`job ${job.id} (${job.type}) started\n`);
    report(flags.wait ? await waitForJob(job.id, flags) : job, flags);
  });
}

/** --vault, --vm | --plan, --no-wait, --timeout: what every failover command takes. */
export function failoverFlags(c: Command, plan = true): Command {
  const withTarget = withAdminFlags(c)
    .requiredOption('--vault <name>', 'vault name')
    .option('--vm <name>', 'one replicated VM');
  return (
    plan ? withTarget.option('--plan <name>', 'every VM of a recovery plan, by group') : withTarget
  )
    .option('--no-wait', 'print the job id and return at once')
    .option('--timeout <duration>', 'give up waiting after this long (e.g. 10m)');
}

export function registerFailoverCommands(program: Command): void {
  const failover = program
    .command('failover')
    .description('test failover, planned and unplanned failover, commit (jobs)');

  failoverFlags(failover.command('test'))
    .description('start "<VM>-test" on the target from a recovery point; replication continues')
    .option('--recovery-point <id>', 'latest | latest-app-consistent | a point id', 'latest')
    .option('--network <server/vmnetwork>', 'the test network (default: not connected)')
    .action((f: Flags) => runFailover('test', f));

  failoverFlags(failover.command('cleanup-test'))
    .description('stop and delete the test VM; record what you observed')
    .option('--notes <text>', 'notes kept with the test')
    .action((f: Flags) => runFailover('cleanup-test', f));

  failoverFlags(failover.command('planned'))
    .description('stop the primary, ship its last changes, start the replica: no data lost')
    .action((f: Flags) => runFailover('planned', f));

  failoverFlags(failover.command('unplanned'))
    .description('start the replica from a retained point (the primary site may be gone)')
    .option('--recovery-point <id>', 'latest | latest-app-consistent | a point id', 'latest')
    .option(
      '--shutdown-source <on|off>',
      'first try to stop the primary and ship what it has',
      'off',
    )
    .action((f: Flags) => runFailover('unplanned', f));

  failoverFlags(failover.command('commit'))
    .description('keep the failed-over VM at its point and discard the other points')
    .action((f: Flags) => runFailover('commit', f));

  failoverFlags(failover.command('change-point'), false)
    .description('before commit: move the failed-over VM to another retained point')
    .requiredOption('--recovery-point <id>', 'latest | latest-app-consistent | a point id')
    .action((f: Flags) => runFailover('change-point', f));
}
