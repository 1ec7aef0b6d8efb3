/**
 * `secondsite replication enable | disable | pause | resume | resync` (R14, R20),
 * `item list | show` and `recovery-point list` (R21). Commands that start work print the job
 * id and follow it (`--no-wait` returns at once; `--json` prints the finished job).
 */
import type { Command } from 'commander';
import type {
  ItemView,
  JobView,
  RecoveryPointView,
  ReplicationAction,
} from '../../common/api-client/index.ts';
import { withAdminFlags, withApiClient, type AdminFlags } from '../admin-config.ts';
import { printJson, table } from '../output/table.ts';
import { report, waitForJob } from './job.ts';
import { failoverFlags, runFailover } from './failover.ts';
import { addSetPriorityCommand } from './capacity.ts';

type JobFlags = AdminFlags & { vault: string; wait: boolean; timeout?: string };

async function follow(start: Promise<JobView>, flags: JobFlags): Promise<void> {
  const job = await start;
  if (!flags.json) process.stdout.write(`job ${job.id} (${job.type}) started\n`);
  report(flags.wait ? await waitForJob(job.id, flags) : job, flags);
}

const age = (s: number | null): string =>
  s === null
    ? '-'
    : s < 120
      ? `${s}s`
      : s < 7200
        ? `${Math.round(s / 60)}m`
        : `${Math.round(s / 3600)}h`;

export function itemsTable(items: readonly ItemView[]): string {
  if (items.length === 0) return 'no replicated items\n';
  return table(
    ['VM', 'STATE', 'HEALTH', 'POLICY', 'SOURCE', 'TARGET', 'LATEST POINT', 'RPO'],
    items.map((i) => [
      i.vm,
      i.state,
      i.health,
      i.policy,
      `${i.sourceServer}/${i.sourceHost}`,
      `${i.targetServer}/${i.targetHost ?? '-'}`,
      i.latestRecoveryPoint?.time ?? '-',
      age(i.rpoSeconds),
    ]),
  );
}

function itemText(i: ItemView): string {
  const copy = i.initialReplication;
  const lines = [
    `${i.vm}: ${i.state}, health ${i.health}, policy ${i.policy}`,
    `  source ${i.sourceServer}/${i.sourceCloud} on ${i.sourceHost}`,
    `  target ${i.targetServer}/${i.targetCloud} on ${i.targetHost ?? '(not placed yet)'}`,
    `  last cycle ${i.lastCycleAt ?? '-'}, latest point ${
      i.latestRecoveryPoint === null
        ? '-'
        : `${i.latestRecoveryPoint.id} (${i.latestRecoveryPoint.type}) at ${i.latestRecoveryPoint.time}`
    }, RPO ${age(i.rpoSeconds)}`,
    ...(copy === null
      ? []
      : [
          ...(copy.bytesTotal > 0 || (!copy.startsAt && !copy.waiting)
            ? [
                `  initial replication ${copy.bytesTotal === 0 ? 100 : Math.floor((copy.bytesDone / copy.bytesTotal) * 100)}% (${copy.bytesDone} of ${copy.bytesTotal} bytes)`,
              ]
            : []),
          ...(copy.startsAt ? [`  initial replication starts at ${copy.startsAt}`] : []),
          ...(copy.waiting ? [`  initial replication waits: ${copy.waiting}`] : []),
          ...(copy.existingReplica
            ? ['  existing replica at the target: compared, only differences sent']
            : []),
        ]),
    ...(i.priority && i.priority !== 'normal' ? [`  priority ${i.priority}`] : []),
    ...churnLines(i),
    ...(i.received && i.received.rawBytes > 0
      ? [
          `  received by the target since its agent started: ${i.received.wireBytes} bytes ` +
            `(${i.received.rawBytes} before compression)`,
        ]
      : []),
    ...i.errors.map((e) => `  ${e.code}: ${e.message}\n    what to do: ${e.action}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** R22 churn attribution: which disk and offset ranges write most. */
function churnLines(i: ItemView): string[] {
  const c = i.churn;
  if (!c) return [];
  const pct = (s: number): string => `${Math.round(s * 100)}%`;
  const mib = (b: number): string => `${Math.round(b / 1048576)} MiB`;
  return [
    `  churn ${mib(c.avgBytesPerHour)}/h on average, peak ${mib(c.peakBytesPerHour)}/h ` +
      `(last ${Math.round(c.windowMinutes / 60)}h)`,
    ...c.disks.map(
      (d) => `    disk ${d.disk}: ${mib(d.avgBytesPerHour)}/h, ${pct(d.share)} of the writes`,
    ),
    ...c.hotRegions.map(
      (r) =>
        `    hot: disk ${r.disk} offset ${mib(r.offset)}-${mib(r.offset + r.length)}: ` +
        `${pct(r.share)} of the writes`,
    ),
  ];
}

function pointsTable(points: readonly RecoveryPointView[]): string {
  if (points.length === 0) return 'no recovery points\n';
  return table(
    ['ID', 'TIME', 'TYPE'],
    points.map((p) => [p.id, p.time, p.type]),
  );
}

function withJobFlags(c: Command): Command {
  return withAdminFlags(c)
    .requiredOption('--vault <name>', 'vault name')
    .option('--no-wait', 'print the job id and return at once')
    .option('--timeout <duration>', 'give up waiting after this long (e.g. 10m)');
}

export function registerReplicationCommands(program: Command): void {
  const replication = program
    .command('replication')
    .description('protect VMs: enable, disable, pause, resume, resync');

  withJobFlags(replication.command('enable').argument('<vm...>', 'VM names'))
    .description('protect VMs of a cloud associated with a replication policy (a job)')
    .requiredOption('--source-cloud <server/cloud>', 'the cloud the VMs are in')
    .action(async (vms: string[], flags: JobFlags & { sourceCloud: string }) => {
      await withApiClient(flags.config, (api) =>
        follow(api.enableReplication(flags.vault, flags.sourceCloud, vms), flags),
      );
    });

  const actions: Record<ReplicationAction, string> = {
    disable: 'stop protecting VMs (the replica is deleted only when the policy says so)',
    pause: 'stop sending changes; the source keeps journaling them',
    resume: 'send what piled up while paused and continue',
    resync: 'compare both sides and send only what differs',
  };
  for (const [action, description] of Object.entries(actions) as [ReplicationAction, string][]) {
    withJobFlags(replication.command(action).argument('<vm...>', 'VM names'))
      .description(`${description} (a job)`)
      .action(async (vms: string[], flags: JobFlags) => {
        await withApiClient(flags.config, (api) =>
          follow(api.replicationAction(flags.vault, action, vms), flags),
        );
      });
  }

  addSetPriorityCommand(replication);

  failoverFlags(replication.command('reverse'))
    .description(
      'after a committed failover: replicate back from the new primary (a job; after an ' +
        'unplanned failover only differing chunks travel)',
    )
    .action((f: Parameters<typeof runFailover>[1]) => runFailover('reverse', f));

  const item = program.command('item').description('replicated items: state, health, RPO');
  withAdminFlags(item.command('list'))
    .description('list the replicated items of a vault')
    .requiredOption('--vault <name>', 'vault name')
    .action(async (flags: AdminFlags & { vault: string }) => {
      const items = await withApiClient(flags.config, (api) => api.listItems(flags.vault));
      if (flags.json) printJson(items);
      else process.stdout.write(itemsTable(items));
    });
  withAdminFlags(item.command('show').argument('<vm>', 'VM name'))
    .description('one replicated item with the reasons for its health')
    .requiredOption('--vault <name>', 'vault name')
    .action(async (vm: string, flags: AdminFlags & { vault: string }) => {
      const i = await withApiClient(flags.config, (api) => api.getItem(flags.vault, vm));
      if (flags.json) printJson(i);
      else process.stdout.write(itemText(i));
    });

  const point = program.command('recovery-point').description('recovery points of an item');
  withAdminFlags(point.command('list').argument('<vm>', 'VM name'))
    .description('the recovery points the target host retains, oldest first')
    .requiredOption('--vault <name>', 'vault name')
    .action(async (vm: string, flags: AdminFlags & { vault: string }) => {
      const points = await withApiClient(flags.config, (api) =>
        api.listRecoveryPoints(flags.vault, vm),
      );
      if (flags.json) printJson(points);
      else process.stdout.write(pointsTable(points));
    });
}
