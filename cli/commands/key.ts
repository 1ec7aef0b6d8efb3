/** `secondsite key download | list | revoke` (R2): registration keys of a vault. */
import { chmodSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { KeyView } from '../../common/api-client/index.ts';
import { withAdminFlags, withApiClient, type AdminFlags } from '../admin-config.ts';
import { printJson, table } from '../output/table.ts';

function keysTable(keys: readonly KeyView[]): string {
  if (keys.length === 0) return 'no registration keys\n';
  return table(
    ['ID', 'STATE', 'EXPIRES', 'SINGLE-USE', 'SERVER', 'USES'],
    keys.map((k) => [
      k.id,
      k.state,
      k.expiresAt,
      k.singleUse ? 'yes' : 'no',
      k.server ?? '-',
      String(k.uses),
    ]),
  );
}

type DownloadFlags = AdminFlags & {
  vault: string;
  out: string;
  validFor?: string;
  singleUse?: boolean;
  server?: string;
};

export function registerKeyCommands(program: Command): void {
  const key = program.command('key').description('registration keys for provider agents');

  withAdminFlags(key.command('download'))
    .description('make a registration key and write it to a file (mode 0600)')
    .requiredOption('--vault <name>', 'vault name')
    .requiredOption('--out <file>', 'where to write the key file')
    .option('--valid-for <duration>', 'validity, at most 5d (e.g. 12h, 2d)', '5d')
    .option('--single-use', 'the key registers one server only')
    .option('--server <name>', 'only a server of this name may register with the key')
    .action(async (flags: DownloadFlags) => {
      const file = await withApiClient(flags.config, (api) =>
        api.downloadKey(flags.vault, {
          ...(flags.validFor === undefined ? {} : { validFor: flags.validFor }),
          ...(flags.singleUse ? { singleUse: true } : {}),
          ...(flags.server === undefined ? {} : { server: flags.server }),
        }),
      );
      const out = resolve(flags.out);
      // The file holds the key's secret: private from the first byte.
      writeFileSync(out, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
      chmodSync(out, 0o600);
      const summary = {
        keyId: file.keyId,
        vault: file.vault,
        file: out,
        expiresAt: file.expiresAt,
        singleUse: file.singleUse,
        server: file.server,
      };
      if (flags.json) printJson(summary);
      else process.stdout.write(`wrote key ${file.keyId} to ${out} (expires ${file.expiresAt})\n`);
    });

  withAdminFlags(key.command('list'))
    .description('list the registration keys of a vault (never their secrets)')
    .requiredOption('--vault <name>', 'vault name')
    .action(async (flags: AdminFlags & { vault: string }) => {
      const keys = await withApiClient(flags.config, (api) => api.listKeys(flags.vault));
      if (flags.json) printJson(keys);
      else process.stdout.write(keysTable(keys));
    });

  withAdminFlags(key.command('revoke').argument('<key-id>', 'key id (k-…)'))
    .description('revoke a registration key: later registrations with it are refused')
    .requiredOption('--vault <name>', 'vault name')
    .action(async (keyId: string, flags: AdminFlags & { vault: string }) => {
      const revoked = await withApiClient(flags.config, (api) => api.revokeKey(flags.vault, keyId));
      if (flags.json) printJson(revoked);
      else process.stdout.write(`revoked key ${revoked.id}\n`);
    });
}
