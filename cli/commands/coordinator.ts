/** `secondsite coordinator start`: the vault service, until SIGTERM or SIGINT. */
import type { Command } from 'commander';
import { runCoordinator } from '../../coordinator/main.ts';
import { printJson } from '../output/table.ts';

export function registerCoordinatorCommands(program: Command): void {
  const coordinator = program.command('coordinator').description('the vault service');
  coordinator
    .command('start')
    .description('run the coordinator; writes <data>/admin.json for the admin commands')
    .requiredOption('--data <dir>', 'data folder (store, keys, admin.json)')
    .option('--listen <host:port>', 'HTTPS address (port 0: any free port)', '127.0.0.1:9443')
    .option('--json', 'print {url, adminFile} as JSON once listening')
    .action(async (flags: { data: string; listen: string; json?: boolean }) => {
      await runCoordinator({ data: flags.data, listen: flags.listen }, (started) => {
        if (flags.json) printJson({ url: started.url, adminFile: started.adminFile });
        else {
          process.stdout.write(
            `coordinator listening on ${started.url}\nadmin file: ${started.adminFile}\n`,
          );
        }
      });
    });
}
