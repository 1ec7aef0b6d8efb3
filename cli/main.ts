/**
 * The `secondsite` command line (../shared/CLI.md is the contract). Each noun lives in
 * cli/commands/<noun>.ts and registers its subcommands here; errors are mapped to exit codes
 * in one place: 2 for bad usage or input (nothing changed), 1 for a failed action.
 */
import { Command, CommanderError } from 'commander';
import { exitCodeFor, isSecondsiteError } from '../common/errors/errors.ts';
import { registerCoordinatorCommands } from './commands/coordinator.ts';
import { demoCommand } from './commands/demo.ts';
import { hostCommand } from './commands/host.ts';
import { registerJobCommands } from './commands/job.ts';
import { registerKeyCommands } from './commands/key.ts';
import { registerServerCommands } from './commands/server.ts';
import { registerCloudCommands } from './commands/cloud.ts';
import { registerPolicyCommands } from './commands/policy.ts';
import { registerNetworkMapCommands } from './commands/network-map.ts';
import { registerStorageMapCommands } from './commands/storage-map.ts';
import { registerProviderCommands } from './commands/provider.ts';
import { registerVaultCommands } from './commands/vault.ts';
import { registerVmCommands } from './commands/vm.ts';
import { registerReplicationCommands } from './commands/replication.ts';
import { registerFailoverCommands } from './commands/failover.ts';
import { registerPlanCommands } from './commands/plan.ts';
import { registerCapacityCommands } from './commands/capacity.ts';
import { workloadCommand } from './commands/workload.ts';

export function buildProgram(): Command {
  const program = new Command('secondsite')
    .description(
      'Disaster recovery for virtual machines: replicate, rehearse, fail over, fail back.',
    )
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError();
  registerCoordinatorCommands(program);
  registerVaultCommands(program);
  registerJobCommands(program);
  registerKeyCommands(program);
  registerServerCommands(program);
  registerCloudCommands(program);
  registerPolicyCommands(program);
  registerNetworkMapCommands(program);
  registerStorageMapCommands(program);
  registerProviderCommands(program);
  registerVmCommands(program);
  registerReplicationCommands(program);
  registerFailoverCommands(program);
  registerPlanCommands(program);
  registerCapacityCommands(program);
  program.addCommand(demoCommand());
  program.addCommand(hostCommand());
  program.addCommand(workloadCommand());
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    // A command that printed its result but reports a failure (e.g. `job wait` on a failed
    // job) sets process.exitCode instead of throwing, so --json stays one document.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit through here with code 0.
      return e.exitCode === 0 ? 0 : 2;
    }
    const json = argv.includes('--json');
    if (isSecondsiteError(e)) {
      if (json) process.stdout.write(`${JSON.stringify({ error: e.toJSON() })}\n`);
      process.stderr.write(`error: ${e.message} [${e.code}]\n`);
    } else {
      process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    }
    return exitCodeFor(e);
  }
}

process.exitCode = await main(process.argv.slice(2));
