/** `secondsite vault create NAME | vault list` (R1). */
import type { Command } from 'commander';
import type { VaultView } from '../../common/api-client/index.ts';
import { withAdminFlags, withApiClient, type AdminFlags } from '../admin-config.ts';
import { printJson, table } from '../output/table.ts';

function vaultsTable(vaults: readonly VaultView[]): string {
  if (vaults.length === 0) return 'no vaults\n';
  return table(
    ['NAME', 'ID', 'CREATED'],
    vaults.map((v) => [v.name, v.id, v.createdAt]),
  );
}

export function registerVaultCommands(program: Command): void {
  const vault = program.command('vault').description('vaults: one per deployment');

  withAdminFlags(vault.command('create').argument('<name>', 'vault name (a-z, 0-9, -)'))
    .description('create a vault')
    .action(async (name: string, flags: AdminFlags) => {
      const created = await withApiClient(flags.config, (api) => api.createVault(name));
      if (flags.json) printJson(created);
      else process.stdout.write(`created vault ${created.name} (${created.id})\n`);
    });

  withAdminFlags(vault.command('list'))
    .description('list the vaults')
    .action(async (flags: AdminFlags) => {
      const vaults = await withApiClient(flags.config, (api) => api.listVaults());
      if (flags.json) printJson(vaults);
      else process.stdout.write(vaultsTable(vaults));
    });
}
