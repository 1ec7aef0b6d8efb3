/**
 * `secondsite network-map create | delete | list` (R8), and the builder `storage-map` shares:
 * the two nouns differ only in what SERVER/NAME names (a VM network or a storage
 * classification).
 */
import type { Command } from 'commander';
import type { MapKind, MapView } from '../../common/api-client/index.ts';
import { withAdminFlags, withApiClient, type AdminFlags } from '../admin-config.ts';
import { printJson, table } from '../output/table.ts';
import { namingFlags } from './flag-errors.ts';

const MAP_FLAGS = { source: '--source', target: '--target' };

type MapFlags = AdminFlags & { vault: string; source: string; target: string };

function mapsTable(kind: MapKind, maps: readonly MapView[]): string {
  if (maps.length === 0) return `no ${kind} maps\n`;
  return table(
    ['SOURCE', 'TARGET'],
    maps.map((m) => [m.source, m.target]),
  );
}

export function registerMapCommands(
  program: Command,
  kind: MapKind,
  what: { noun: string; description: string },
): void {
  const cmd = program.command(`${kind}-map`).description(what.description);
  const pair = (c: Command, verb: string): Command =>
    withAdminFlags(c)
      .description(`${verb} the map from a source ${what.noun} to a target ${what.noun}`)
      .requiredOption('--vault <name>', 'vault name')
      .requiredOption('--source <server/name>', `source ${what.noun}, SERVER/NAME`)
      .requiredOption('--target <server/name>', `target ${what.noun}, SERVER/NAME`);

  pair(cmd.command('create'), 'create').action(async (flags: MapFlags) => {
    const map = await namingFlags(MAP_FLAGS, () =>
      withApiClient(flags.config, (api) =>
        api.createMap(flags.vault, kind, { source: flags.source, target: flags.target }),
      ),
    );
    if (flags.json) printJson(map);
    else process.stdout.write(`mapped ${map.source} → ${map.target}\n`);
  });

  pair(cmd.command('delete'), 'delete').action(async (flags: MapFlags) => {
    const map = await namingFlags(MAP_FLAGS, () =>
      withApiClient(flags.config, (api) =>
        api.deleteMap(flags.vault, kind, { source: flags.source, target: flags.target }),
      ),
    );
    if (flags.json) printJson(map);
    else process.stdout.write(`deleted the ${kind} map ${map.source} → ${map.target}\n`);
  });

  withAdminFlags(cmd.command('list'))
    .description(`list the ${kind} maps of a vault`)
    .requiredOption('--vault <name>', 'vault name')
    .action(async (flags: AdminFlags & { vault: string }) => {
      const maps = await withApiClient(flags.config, (api) => api.listMaps(flags.vault, kind));
      if (flags.json) printJson(maps);
      else process.stdout.write(mapsTable(kind, maps));
    });
}

export function registerNetworkMapCommands(program: Command): void {
  registerMapCommands(program, 'network', {
    noun: 'VM network',
    description: 'network maps: where replicas of VMs on a network connect (R8)',
  });
}
