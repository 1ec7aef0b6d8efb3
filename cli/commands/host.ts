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
  vmPair,
  vmPoints,
  vmRead,
  vmProtect,
  type HostStartFlags,
  type VmPairFlags,
  type VmAction,
  type VmJson,
} from '../../agent/host/main.ts';
import { collect, printJson } from '../output/table.ts';
import type { RevocationView } from '../../common/api-client/index.ts';
import { withAdminFlags, withApiClient, type AdminFlags } from '../admin-config.ts';
import { setBandwidthCommand } from './capacity.ts';
import { namingFlags } from './flag-errors.ts';
import { pointLine, pointsTable, vmsTable } from '../output/host-vm.ts';

function startCommand(): Command {
  return new Command('start')
    .description('run the host agent (enrolled with a provider, or --standalone)')
    .requiredOption('--data <dir>', 'data folder (locked: one agent per folder)')
    .option('--name <host>', "host name (standalone default: this machine's hostname)")
    .option('--provider <host:port>', 'the provider agent to enrol with')
    .option('--token-file <file>', "the provider's host join token")
    .option('--address <ip>', 'address peers reach this host at (the replication port binds it)')
    .option('--tls-dir <dir>', "this host's ca.pem, cert.pem, key.pem (default: <data>/identity)")
    .option('--cert-port <port>', 'replication port, certificate authentication', '8084')
    .option('--ticket-port <port>', 'replication port, ticket authentication', '8083')
    .option('--standalone', 'no provider: serve VMs and the local control API only')
    .option('--freeze-timeout <duration>', 'how long a guest may take to freeze', '10s')
    .option('--journal-cap <size>', "cap of a VM's unshipped journal (default: half its disks)")
    .option(
      '--live-segments <on|off>',
      'ship each cycle while it is written (on) or only once cut, coalesced (off)',
      'on',
    )
    .addOption(
      new Option(
        '--dev-copy-frequency <duration>',
        "development: cut every VM's crash-consistent points this often (the demo uses 5s)",
      ).hideHelp(),
    )
    .addOption(
      new Option(
        '--dev-churn-bucket <duration>',
        'development: count guest write churn in buckets of this length, 1s to 60s (default 1m)',
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
  return vmSub(action, description).action(
    async (name: string, flags: { data: string; json?: boolean }) => {
      printVm(await vmAction(action, { data: flags.data, name }), flags.json);
    },
  );
}

/** A `host vm` subcommand with the arguments every one of them takes. */
function vmSub(name: string, description: string, named = true): Command {
  const c = new Command(name).description(description);
  if (named) c.argument('<name>', 'VM name');
  return c
    .requiredOption('--data <dir>', "the host agent's data folder")
    .option('--json', 'print JSON');
}

type CreateFlags = { data: string; disk: string[]; nic: string[]; json?: boolean };
type ProtectFlags = {
  data: string;
  copyFrequency: string;
  appConsistentHours: string;
  json?: boolean;
};

function createCommand(): Command {
  return vmSub('create', 'create a stopped VM with new sparse disks')
    .option('--disk <size>', 'a disk of this size, e.g. 1GiB (repeat for more disks)', collect, [])
    .option('--nic <network[/subnet]>', 'a network adapter (repeatable)', collect, [])
    .action(async (name: string, f: CreateFlags) => {
      printVm(await vmCreate({ data: f.data, name, disk: f.disk, nic: f.nic }), f.json);
    });
}

function protectCommand(): Command {
  return vmSub('protect', 'journal every write and cut recovery points on a schedule')
    .option('--copy-frequency <30s|5m|15m>', 'crash-consistent point interval', '5m')
    .option('--app-consistent-hours <n>', 'app-consistent point interval, 0 = never', '0')
    .action(async (name: string, f: ProtectFlags) => {
      printVm(await vmProtect({ ...f, name }), f.json);
    });
}

function listCommand(): Command {
  return vmSub('list', 'every VM of this host with its NBD URIs and protection', false).action(
    async (f: { data: string; json?: boolean }) => {
      const vms = await vmList(f);
      if (f.json) printJson(vms);
      else process.stdout.write(vmsTable(vms));
    },
  );
}

function cutCommand(): Command {
  return vmSub('cut', 'cut a recovery point now')
    .option('--app-consistent', 'freeze the guest first')
    .action(async (name: string, f: { data: string; appConsistent?: boolean; json?: boolean }) => {
      const point = await vmCut({ ...f, name });
      if (f.json) printJson(point);
      else process.stdout.write(pointLine(point));
    });
}

function pointsCommand(): Command {
  return vmSub('points', "the VM's recovery points, oldest first").action(
    async (name: string, f: { data: string; json?: boolean }) => {
      const points = await vmPoints({ data: f.data, name });
      if (f.json) printJson(points);
      else process.stdout.write(pointsTable(points));
    },
  );
}

type PairFlags = Omit<VmPairFlags, 'name'> & { disk: string[]; json?: boolean };

function pairCommand(): Command {
  return vmSub('pair', 'pair the VM for replication with a peer host')
    .requiredOption('--role <primary|replica>', 'this host ships (primary) or receives (replica)')
    .requiredOption('--peer-host <name>', "the peer host's name (its certificate identity)")
    .requiredOption('--peer-address <ip:port>', "the peer's replication port")
    .requiredOption('--vault <vault>', 'the vault both hosts belong to')
    .option('--epoch <n>', 'replication epoch (both sides alike)', '1')
    .option('--compression <on|off>', 'zstd-compress shipped chunks', 'on')
    .option(
      '--disk <size>',
      'replica: create the VM with a disk of this size (repeat)',
      collect,
      [],
    )
    .action(async (name: string, f: PairFlags) => {
      printVm(await vmPair({ ...f, name }), f.json);
    });
}

function readCommand(): Command {
  return vmSub('read', 'replica: write one disk as it was at a recovery point to a file')
    .requiredOption('--disk <index>', 'disk index')
    .requiredOption('--point <id>', 'recovery point id (see: host vm points)')
    .requiredOption('--out <file>', 'file to write')
    .action(
      async (
        name: string,
        f: { data: string; disk: string; point: string; out: string; json?: boolean },
      ) => {
        const r = await vmRead({ ...f, name });
        if (f.json) printJson(r);
        else process.stdout.write(`wrote ${r.bytes} bytes to ${f.out}\n`);
      },
    );
}

function vmCommand(): Command {
  return new Command('vm')
    .description("this host's VMs (through the local control socket)")
    .addCommand(createCommand())
    .addCommand(simpleVmCommand('start', "serve the VM's disks as NBD exports"))
    .addCommand(simpleVmCommand('stop', 'close the exports and the disks'))
    .addCommand(protectCommand())
    .addCommand(simpleVmCommand('unprotect', 'stop journaling; discards the journal and points'))
    .addCommand(cutCommand())
    .addCommand(pointsCommand())
    .addCommand(pairCommand())
    .addCommand(readCommand())
    .addCommand(listCommand());
}

function revokedText(v: RevocationView): string {
  const head = v.changed
    ? `revoked ${v.host} (${v.identity}); revoked list version ${v.version}`
    : `${v.host} was already revoked; revoked list version ${v.version}`;
  const hosts = v.hosts.map(
    (h) => `  ${h.host}: ${h.applied ? 'has it' : `not yet (${h.pending ?? ''})`}`,
  );
  return [head, ...hosts, ''].join('\n');
}

/**
 * `host revoke` (issue #7): the host's credentials are refused by every host of the vault on
 * both replication ports from their next call on, and the ticket service stops granting.
 */
function revokeCommand(): Command {
  return withAdminFlags(new Command('revoke'))
    .description(
      "revoke a host's credentials: every host of the vault refuses its replication calls " +
        '(8084 and 8083) from the next call on; re-enrol it to replicate again',
    )
    .requiredOption('--vault <name>', 'vault name')
    .requiredOption('--host <server/host>', 'the host to revoke')
    .action(async (flags: AdminFlags & { vault: string; host: string }) => {
      const view = await namingFlags({ vault: '--vault', host: '--host' }, () =>
        withApiClient(flags.config, (api) => api.revokeHost(flags.vault, { host: flags.host })),
      );
      if (flags.json) printJson(view);
      else process.stdout.write(revokedText(view));
    });
}

export function hostCommand(): Command {
  return new Command('host')
    .description('the host agent: serves VM disks, journals writes, cuts recovery points')
    .addCommand(startCommand())
    .addCommand(vmCommand())
    .addCommand(setBandwidthCommand())
    .addCommand(revokeCommand());
}
