/** `secondsite workload`: a stand-in guest writing a verifiable pattern through NBD. */
import { Command } from 'commander';
import {
  checkCommand,
  workloadCommand as run,
  type WorkloadFlags,
} from '../../agent/guest/main.ts';
import { collect, humanSize, printJson } from '../output/table.ts';

export function workloadCommand(): Command {
  return new Command('workload')
    .description('write a reproducible pattern through NBD exports (a stand-in guest)')
    .option('--nbd <uri>', 'nbd+unix:///EXPORT?socket=PATH (repeat: one per disk)', collect, [])
    .option('--rate <MB/s>', 'write rate in MB/s, 0 = unlimited', '10')
    .option('--duration <duration>', 'how long to write, e.g. 30s', '10s')
    .option('--block-size <size>', 'bytes per write, a multiple of 4KiB', '64KiB')
    .option('--seed <n>', 'pattern and block choice seed (default: random, printed)')
    .option('--guest-agent <socket>', "answer the host's freeze/thaw on this guest-agent socket")
    .option('--vm <name>', 'the VM name the guest agent announces', 'workload')
    .option('--queue-depth <n>', 'writes in flight', '4')
    .option('--verify', 'at the end, read back every block written and check it')
    .option('--check', 'write nothing: check every block of the disks (needs --seed)')
    .option('--json', 'print the summary as one JSON document')
    .action(async (flags: WorkloadFlags) => {
      if (flags.check) {
        const r = await checkCommand(flags);
        if (flags.json) return printJson(r);
        process.stdout.write(
          `checked ${r.blocks} blocks: ${r.pattern} pattern, ${r.zero} zero, ${r.foreign} foreign, ${r.bad} bad\n`,
        );
        return;
      }
      const s = await run(flags);
      if (flags.json) return printJson(s);
      const verified = s.verified ? `, verified ${s.verified.blocks} blocks` : '';
      process.stdout.write(
        `wrote ${humanSize(s.bytesWritten)} in ${s.ops} writes over ${s.seconds}s (${s.mbPerSecond} MB/s), ` +
          `seed ${s.seed}, ${s.freezes} freezes${verified}\n`,
      );
    });
}
