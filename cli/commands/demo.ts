/**
 * `secondsite demo` (`npm run demo`): the product's main job on one machine. By default two
 * sites on loopback (cli/demo/two-sites.ts); `--single-host` runs the storage path on one host
 * agent (cli/demo/single-host.ts). Flags are checked before anything starts (exit 2).
 */
import { Command } from 'commander';
import { compileDemoOptions, DEFAULT_RATE, type DemoFlags } from '../demo/options.ts';
import { runSingleHostDemo } from '../demo/single-host.ts';
import { runTwoSiteDemo } from '../demo/two-sites.ts';

export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'run secondsite locally: a coordinator, two sites (New York, Chicago) with a host each, ' +
        'two protected VMs with a guest workload, and live status',
    )
    .option('--duration <duration>', 'end by itself this long after replication starts (e.g. 45s)')
    .option('--rate <MB/s>', `workload write rate per VM (default: ${DEFAULT_RATE})`)
    .option(
      '--time-scale <n>',
      'replication time scale, 0.01-1: 0.2 runs the 30 s copy frequency every 6 s, 1 = real time (default: 0.2)',
    )
    .option('--keep', 'keep the temp folder (data and logs) at the end')
    .option('--no-failover', 'skip the test failover, planned failover and failback at the end')
    .option('--single-host', 'the storage path only: one host agent, one protected VM')
    .action(async (flags: DemoFlags) => {
      const opts = compileDemoOptions(flags);
      const stop = new AbortController();
      // Every signal is caught, not only the first: a second Ctrl-C must not kill the demo
      // while it stops its processes, or they would be left running.
      const onSignal = (): void => {
        if (stop.signal.aborted) process.stdout.write('\nstill stopping, please wait\n');
        stop.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        if (opts.singleHost) await runSingleHostDemo(opts, stop);
        else await runTwoSiteDemo(opts, stop.signal);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
