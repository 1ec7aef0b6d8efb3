/**
 * `secondsite host ...`: the host agent process (`host start`) and its local administration
 * (`host vm ...`, through the agent's control socket in its data folder).
 */
import { Command, Option } from 'commander';
import {
  startHost,
  vmAction,
  vmCreate,
  vmCut,
  vmList,
  vmPoints,
  vmProtect,
  type HostStartFlags,
  type VmAction,
  type VmJson,
} from '../../agent/host/main.ts';
import { collect, printJson } from '../output/table.ts';
import { pointLine, pointsTable, vmsTable } from '../output/host-vm.ts';

function startCommand(): Command {
  return new Command('start')
    .description('run the host agent (enrolled with a provider, or --standalone)')
    .requiredOption('--data <dir>', 'data folder (locked: one agent per folder)')
    .option('--name <host>', "host name (standalone default: this machine's hostname)")
    .option('--provider <host:port>', 'the provider agent to enrol with')
    .option('--token-file <file>', "the provider's host join token")
    .option('--address <ip>', 'address peers reach this host at')
    .option('--cert-port <port>', 'replication port, certificate authentication', '8084')
    .option('--ticket-port <port>', 'replication port, ticket authentication', '8083')
    .option('--standalone', 'no provider: serve VMs and the local control API only')
    .option('--freeze-timeout <duration>', 'how long a guest may take to freeze', '10s')
    .option('--journal-cap <size>', "cap of a VM's unshipped journal (default: half its disks)")
    .addOption(
      new Option(
        '--dev-copy-frequency <duration>',
        "development: cut every VM's crash-consistent points this often (the demo uses 5s)",
      ).hideHelp(),
    )
    .action(async (flags: HostStartFlags) => {
      await startHost(flags);
    });
}

function printVm(vm: VmJson, json: boolean | undefined): void {
  if (json) printJson(vm);
  else process.stdout.write(vmsTable([vm]));
}

function simpleVmCommand(action: VmAction, description: string): Command {
  return new Command(action)
    .description(description)
    .argument('<name>', 'VM name')
    .requiredOption('--data <dir>', "the host agent's data folder")
    .option('--json', 'print the VM as JSON')
    .action(async (name: string, flags: { data: string; json?: boolean }) => {
      printVm(await vmAction(action, { data: flags.data, name }), flags.json);
    });
}

function vmCommand(): Command {
  const vm = new Command('vm').description("this host's VMs (through the local control socket)");
  vm.command('create')
    .description('create a stopped VM with new sparse disks')
    .argument('<name>', 'VM name')
    .requiredOption('--data <dir>', "the host agent's data folder")
    .option('--disk <size>', 'a disk of this size, e.g. 1GiB (repeat for more disks)', collect, [])
    .option('--nic <network[/subnet]>', 'a network adapter (repeatable)', collect, [])
    .option('--json', 'print the VM as JSON')
    .action(
      async (
        name: string,
        flags: { data: string; disk: string[]; nic: string[]; json?: boolean },
      ) => {
        printVm(
          await vmCreate({ data: flags.data, name, disk: flags.disk, nic: flags.nic }),
          flags.json,
        );
      },
    );
  vm.addCommand(simpleVmCommand('start', "serve the VM's disks as NBD exports"));
  vm.addCommand(simpleVmCommand('stop', 'close the exports and the disks'));
  vm.addCommand(simpleVmCommand('unprotect', 'stop journaling; discards the journal and points'));
  vm.command('protect')
    .description('journal every write and cut recovery points on a schedule')
    .argument('<name>', 'VM name')
    .requiredOption('--data <dir>', "the host agent's data folder")
    .option('--copy-frequency <30s|5m|15m>', 'crash-consistent point interval', '5m')
    .option('--app-consistent-hours <n>', 'app-consistent point interval, 0 = never', '0')
    .option('--json', 'print the VM as JSON')
    .action(
      async (
        name: string,
        flags: { data: string; copyFrequency: string; appConsistentHours: string; json?: boolean },
      ) => {
        printVm(await vmProtect({ ...flags, name }), flags.json);
      },
    );
  vm.command('list')
    .description('every VM of this host with its NBD URIs and protection')
    .requiredOption('--data <dir>', "the host agent's data folder")
    .option('--json', 'print a JSON array')
    .action(async (flags: { data: string; json?: boolean }) => {
      const vms = await vmList(flags);
      if (flags.json) printJson(vms);
      else process.stdout.write(vmsTable(vms));
    });
  vm.command('cut')
    .description('cut a recovery point now')
    .argument('<name>', 'VM name')
    .requiredOption('--data <dir>', "the host agent's data folder")
    .option('--app-consistent', 'freeze the guest first')
    .option('--json', 'print the point as JSON')
    .action(
      async (name: string, flags: { data: string; appConsistent?: boolean; json?: boolean }) => {
        const point = await vmCut({ ...flags, name });
        if (flags.json) printJson(point);
        else process.stdout.write(pointLine(point));
      },
    );
  vm.command('points')
    .description("the VM's recovery points, oldest first")
    .argument('<name>', 'VM name')
    .requiredOption('--data <dir>', "the host agent's data folder")
    .option('--json', 'print a JSON array')
    .action(async (name: string, flags: { data: string; json?: boolean }) => {
      const points = await vmPoints({ data: flags.data, name });
      if (flags.json) printJson(points);
      else process.stdout.write(pointsTable(points));
    });
  return vm;
}

export function hostCommand(): Command {
  return new Command('host')
    .description('the host agent: serves VM disks, journals writes, cuts recovery points')
    .addCommand(startCommand())
    .addCommand(vmCommand());
}
