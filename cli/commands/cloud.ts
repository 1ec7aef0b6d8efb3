/** `secondsite cloud list | sync` (R5, R7). */
import type { Command } from 'commander';
import {
  FINISHED_JOB_STATES,
  type CloudView,
  type JobView,
} from '../../common/api-client/index.ts';
import { withAdminFlags, withApiClient, type AdminFlags } from '../admin-config.ts';
import { printJson, table } from '../output/table.ts';

/** Jobs take seconds; twice a second is plenty. */
const POLL_MS = 500;

function cloudsTable(clouds: readonly CloudView[]): string {
  if (clouds.length === 0) return 'no clouds\n';
  return table(
    ['SERVER', 'CLOUD', 'SYNCED', 'HOST GROUPS', 'POLICY', 'PAIRED WITH'],
    clouds.map((c) => [
      c.server,
      c.name,
      c.synced ? 'yes' : 'no',
      c.hostGroups.join(', ') || '-',
      c.policy ?? '-',
      c.pairedWith ?? '-',
    ]),
  );
}

type SyncFlags = AdminFlags & { vault: string; server: string; cloud: string; wait: boolean };

export function registerCloudCommands(program: Command): void {
  const cloud = program.command('cloud').description('clouds of the registered servers');

  withAdminFlags(cloud.command('list'))
    .description('list the clouds of a vault')
    .requiredOption('--vault <name>', 'vault name')
    .action(async (flags: AdminFlags & { vault: string }) => {
      const clouds = await withApiClient(flags.config, (api) => api.listClouds(flags.vault));
      if (flags.json) printJson(clouds);
      else process.stdout.write(cloudsTable(clouds));
    });

  withAdminFlags(cloud.command('sync'))
    .description("sync one cloud's metadata from its server (a job)")
    .requiredOption('--vault <name>', 'vault name')
    .requiredOption('--server <name>', 'server name')
    .requiredOption('--cloud <name>', 'cloud name')
    .option('--no-wait', 'print the job id and return at once')
    .action(async (flags: SyncFlags) => {
      const job = await withApiClient(flags.config, async (api) => {
        let j: JobView = await api.syncCloud(flags.vault, flags.server, flags.cloud);
        if (!flags.json) process.stdout.write(`job ${j.id} (${j.type}) started\n`);
        while (flags.wait && !FINISHED_JOB_STATES.includes(j.state)) {
          await new Promise((r) => setTimeout(r, POLL_MS));
          j = await api.getJob(j.id);
        }
        return j;
      });
      if (flags.json) printJson(job);
      else {
        const err = job.error === null ? '' : `: ${job.error.message} [${job.error.code}]`;
        process.stdout.write(`job ${job.id}: ${job.state}${err}\n`);
      }
      if (job.state === 'failed' || job.state === 'cancelled') process.exitCode = 1;
    });
}
