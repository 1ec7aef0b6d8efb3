/**
 * R22 (CLI.md "Guests and capacity"): `capacity plan`, `host set-bandwidth` and
 * `replication set-priority`. Rates are MB/s (10^6 bytes per second); bandwidth windows are
 * in each host's local time.
 */
import { Command } from 'commander';
import type { BandwidthView, CapacityPlanView, ItemView } from '../../common/api-client/index.ts';
import { withAdminFlags, withApiClient, type AdminFlags } from '../admin-config.ts';
import { collect, humanSize, printJson, table } from '../output/table.ts';

const mbps = (bytesPerSecond: number): string => (bytesPerSecond / 1e6).toFixed(2);
const duration = (s: number): string =>
  s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`;

export function capacityText(p: CapacityPlanView): string {
  const rows = p.vms.map((v) => [
    `${v.server}/${v.vm}`,
    v.protected ? 'protected' : 'candidate',
    v.policy ? `${v.policy} (${v.copyFrequency ?? '-'})` : '-',
    v.priority,
    humanSize(v.diskBytes),
    `${humanSize(v.churnAvgBytesPerHour)}/h`,
    `${humanSize(v.churnPeakBytesPerHour)}/h`,
    mbps(v.requiredBytesPerSecond),
    duration(v.initialCopySeconds),
    humanSize(v.replicaStorageBytes),
    v.carried ? 'yes' : 'NO',
  ]);
  const t = p.total;
  rows.push([
    `TOTAL (${t.vms})`,
    '',
    '',
    '',
    humanSize(t.diskBytes),
    '',
    '',
    mbps(t.requiredBytesPerSecond),
    duration(t.initialCopySeconds),
    humanSize(t.replicaStorageBytes),
    t.notCarried.length === 0 ? 'yes' : `${t.notCarried.length} not`,
  ]);
  const head = [
    'VM',
    'STATUS',
    'POLICY',
    'PRIORITY',
    'DISKS',
    'CHURN AVG',
    'CHURN PEAK',
    'NEEDS MB/s',
    'INITIAL COPY',
    'REPLICA STORAGE',
    'CARRIED',
  ];
  const notes = p.vms
    .filter((v) => v.note !== null)
    .map((v) => `  ${v.server}/${v.vm}: ${v.note ?? ''}`);
  return [
    `link ${mbps(p.linkBytesPerSecond)} MB/s; average need ${mbps(t.averageBytesPerSecond)} MB/s; ` +
      `undo data ${humanSize(t.undoBytes)}`,
    table(head, rows).trimEnd(),
    t.notCarried.length === 0
      ? "the link carries every VM's churn"
      : `the link cannot carry: ${t.notCarried.join(', ')}`,
    ...(notes.length ? ['notes:', ...notes] : []),
    'assumptions:',
    ...p.assumptions.map((a) => `  ${a}`),
    '',
  ].join('\n');
}

function bandwidthText(b: BandwidthView): string {
  const prio = Object.entries(b.priorities).map(([vm, p]) => `${vm}=${p}`);
  return (
    `${b.host}: ${b.description} (host local time)` +
    (prio.length ? `; priorities ${prio.join(', ')}` : '') +
    (b.applied ? '; applied\n' : `; not applied yet: ${b.pending ?? ''}\n`)
  );
}

export function registerCapacityCommands(program: Command): void {
  const capacity = program.command('capacity').description('capacity planning (R22)');
  withAdminFlags(capacity.command('plan'))
    .description(
      'bandwidth, initial copy time and replica storage that protecting the VMs needs, and ' +
        'which VMs the link cannot carry (from the churn the hosts measured)',
    )
    .requiredOption('--vault <name>', 'vault name')
    .option('--cloud <server/cloud>', 'only the VMs of this cloud')
    .option('--policy <name>', 'plan candidates under this policy (and only its protected VMs)')
    .option('--bandwidth <MB/s>', 'the link between the sites', '100')
    .action(
      async (
        flags: AdminFlags & { vault: string; cloud?: string; policy?: string; bandwidth: string },
      ) => {
        const plan = await withApiClient(flags.config, (api) =>
          api.capacityPlan(flags.vault, {
            ...(flags.cloud === undefined ? {} : { cloud: flags.cloud }),
            ...(flags.policy === undefined ? {} : { policy: flags.policy }),
            bandwidth: flags.bandwidth,
          }),
        );
        if (flags.json) printJson(plan);
        else process.stdout.write(capacityText(plan));
      },
    );
}

/** `host set-bandwidth` (added under `secondsite host`). */
export function setBandwidthCommand(): Command {
  return withAdminFlags(new Command('set-bandwidth'))
    .description(
      "cap a host's replication bandwidth, optionally differently in time windows (host local time)",
    )
    .requiredOption('--vault <name>', 'vault name')
    .requiredOption('--host <server/host>', 'the host (its replication as a source is capped)')
    .option('--limit <MB/s>', 'the cap outside the windows')
    .option('--unlimited', 'no cap outside the windows')
    .option(
      '--window <HH:MM-HH:MM=MB/s>',
      'a different cap in a window, e.g. 08:00-18:00=20 (repeatable; =unlimited too)',
      collect,
      [],
    )
    .action(
      async (
        flags: AdminFlags & {
          vault: string;
          host: string;
          limit?: string;
          unlimited?: boolean;
          window: string[];
        },
      ) => {
        const view = await withApiClient(flags.config, (api) =>
          api.setBandwidth(flags.vault, {
            host: flags.host,
            ...(flags.limit === undefined ? {} : { limit: flags.limit }),
            ...(flags.unlimited ? { unlimited: true } : {}),
            windows: flags.window,
          }),
        );
        if (flags.json) printJson(view);
        else process.stdout.write(bandwidthText(view));
      },
    );
}

/** `replication set-priority` (added under `secondsite replication`). */
export function addSetPriorityCommand(replication: Command): void {
  withAdminFlags(replication.command('set-priority').argument('<vm...>', 'VM names'))
    .description("which VMs' changes go first when their host's bandwidth cap binds")
    .requiredOption('--vault <name>', 'vault name')
    .requiredOption('--priority <high|normal|low>', 'the priority')
    .action(async (vms: string[], flags: AdminFlags & { vault: string; priority: string }) => {
      const r = await withApiClient(flags.config, (api) =>
        api.setPriority(flags.vault, flags.priority, vms),
      );
      if (flags.json) printJson(r);
      else {
        const items: readonly ItemView[] = r.items;
        for (const i of items)
          process.stdout.write(`${i.vm}: priority ${i.priority ?? 'normal'}\n`);
        for (const h of r.hosts) process.stdout.write(bandwidthText(h));
      }
    });
}
