/** `secondsite vm list | show` (R7): the vault's VMs as their hosts reported them. */
import type { Command } from 'commander';
import type { VmView } from '../../common/api-client/index.ts';
import { withAdminFlags, withApiClient, type AdminFlags } from '../admin-config.ts';
import { humanSize, printJson, table } from '../output/table.ts';

function vmsTable(vms: readonly VmView[]): string {
  if (vms.length === 0) return 'no VMs\n';
  return table(
    ['SERVER', 'VM', 'CLOUD', 'HOST', 'STATE', 'ROLE', 'DISKS'],
    vms.map((v) => [
      v.server,
      v.name,
      v.cloud ?? '-',
      v.host,
      v.state,
      v.role,
      v.disks.map((d) => humanSize(d.sizeBytes)).join(', ') || '-',
    ]),
  );
}

function vmText(v: VmView): string {
  const lines = [
    `${v.server}/${v.name}: ${v.state}, role ${v.role}`,
    `  cloud ${v.cloud ?? '-'}, host ${v.host}`,
    ...v.disks.map(
      (d) => `  disk ${d.index}: ${humanSize(d.sizeBytes)}  ${d.nbd ?? '(no export: stopped)'}`,
    ),
    ...v.nics.map((n) => `  nic: ${n.network}${n.subnet ? `/${n.subnet}` : ''}`),
  ];
  return `${lines.join('\n')}\n`;
}

export function registerVmCommands(program: Command): void {
  const vm = program.command('vm').description("the vault's VMs, as their hosts report them");

  withAdminFlags(vm.command('list'))
    .description('list the VMs of a vault')
    .requiredOption('--vault <name>', 'vault name')
    .option('--cloud <server/cloud>', 'only the VMs of this cloud')
    .action(async (flags: AdminFlags & { vault: string; cloud?: string }) => {
      const vms = await withApiClient(flags.config, (api) => api.listVms(flags.vault, flags.cloud));
      if (flags.json) printJson(vms);
      else process.stdout.write(vmsTable(vms));
    });

  withAdminFlags(vm.command('show').argument('<name>', 'SERVER/VM'))
    .description('one VM with its disks (NBD URIs) and network adapters')
    .requiredOption('--vault <name>', 'vault name')
    .action(async (name: string, flags: AdminFlags & { vault: string }) => {
      const v = await withApiClient(flags.config, (api) => api.getVm(flags.vault, name));
      if (flags.json) printJson(v);
      else process.stdout.write(vmText(v));
    });
}
