/** `secondsite server list` (R3): registered site managers and whether they are connected. */
import type { Command } from 'commander';
import type { ServerView } from '../../common/api-client/index.ts';
import { withAdminFlags, withApiClient, type AdminFlags } from '../admin-config.ts';
import { printJson, table } from '../output/table.ts';

function serversTable(servers: readonly ServerView[]): string {
  if (servers.length === 0) return 'no servers\n';
  return table(
    ['NAME', 'STATE', 'VERSION', 'CLOUDS'],
    servers.map((s) => [s.name, s.state, s.version, s.clouds.join(', ') || '-']),
  );
}

export function registerServerCommands(program: Command): void {
  const server = program.command('server').description('site managers (provider agents)');
  withAdminFlags(server.command('list'))
    .description('list the servers of a vault')
    .requiredOption('--vault <name>', 'vault name')
    .action(async (flags: AdminFlags & { vault: string }) => {
      const servers = await withApiClient(flags.config, (api) => api.listServers(flags.vault));
      if (flags.json) printJson(servers);
      else process.stdout.write(serversTable(servers));
    });
}
