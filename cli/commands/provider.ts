/** `secondsite provider start`: the site manager's agent, until SIGTERM or SIGINT (R3). */
import type { Command } from 'commander';
import { runProvider } from '../../agent/provider/main.ts';
import { printJson } from '../output/table.ts';

interface StartFlags {
  data: string;
  site: string;
  key?: string;
  name?: string;
  syncClouds: string;
  proxy?: string;
  listen?: string;
  json?: boolean;
}

export function registerProviderCommands(program: Command): void {
  const provider = program.command('provider').description('the site manager agent');
  provider
    .command('start')
    .description('run the provider; the first start registers with --key')
    .requiredOption('--data <dir>', 'data folder (identity, keys, host-join-token)')
    .requiredOption('--site <file>', 'site file (clouds, host groups, hosts, networks, VMs)')
    .option('--key <file>', 'registration key file (first start only)')
    .option('--name <name>', "friendly server name (default: the site file's server)")
    .option('--sync-clouds <all|none>', 'clouds to sync at registration', 'all')
    .option('--proxy <url>', 'reach the coordinator through this HTTP CONNECT proxy')
    .option('--listen <host:port>', 'where hosts enrol', '127.0.0.1:8443')
    .option('--json', 'print {server, vault, identity, joinToken, hosts} as JSON once started')
    .action(async (flags: StartFlags) => {
      await runProvider(
        {
          data: flags.data,
          site: flags.site,
          ...(flags.key === undefined ? {} : { key: flags.key }),
          ...(flags.name === undefined ? {} : { name: flags.name }),
          syncClouds: flags.syncClouds as 'all' | 'none',
          ...(flags.proxy === undefined ? {} : { proxy: flags.proxy }),
          ...(flags.listen === undefined ? {} : { listen: flags.listen }),
        },
        (p) => {
          const info = p.agent.identity.info;
          const out = {
            server: info.name,
            vault: info.vault,
            identity: info.identity,
            joinToken: `${p.dataDir}/host-join-token`,
            hosts: `${p.hostsHost}:${p.agent.hosts.port}`,
          };
          if (flags.json) printJson(out);
          else {
            process.stdout.write(
              `provider ${info.name} running in vault ${info.vault}; hosts enrol at ${out.hosts} with ${out.joinToken}\n`,
            );
          }
        },
      );
    });
}
