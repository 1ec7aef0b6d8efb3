/**
 * The stand-in guests of the demo: one workload per VM (agent/guest's runWorkload), each on
 * the VM's first disk through its NBD URI, verified at the end by the workload's own check
 * (every block it wrote is read back and compared with its reproducible pattern).
 */
import type { VmView } from '../../common/api-client/index.ts';
import { SecondsiteError } from '../../common/errors/errors.ts';
import {
  compileWorkloadOptions,
  runWorkload,
  type WorkloadSummary,
} from '../../agent/guest/main.ts';

/** A workload runs until stopped; the demo's --duration ends it, not the workload's own. */
const UNTIL_STOPPED = '3650d';

export interface VmWorkload {
  readonly vm: string;
  readonly nbd: string;
  readonly seed: number;
  /** The workload's latest progress line. */
  line: string;
  /** Set if the workload failed while running. */
  error: Error | undefined;
  readonly stop: AbortController;
  readonly done: Promise<WorkloadSummary | undefined>;
}

export function startWorkloads(vms: readonly VmView[], rate: string): VmWorkload[] {
  return vms.map((vm) => {
    const nbd = vm.disks[0]?.nbd;
    if (nbd === null || nbd === undefined) {
      throw new SecondsiteError(
        'SS_CONFLICT',
        `${vm.server}/${vm.name} has no NBD export (is it running?)`,
        {
          vm: vm.name,
        },
      );
    }
    const opts = compileWorkloadOptions({
      nbd: [nbd],
      rate,
      duration: UNTIL_STOPPED,
      vm: vm.name,
      verify: true,
    });
    const stop = new AbortController();
    const w: VmWorkload = {
      vm: vm.name,
      nbd,
      seed: opts.seed,
      line: '',
      error: undefined,
      stop,
      done: runWorkload(opts, stop.signal, (line) => {
        w.line = line;
      }).catch((e: unknown) => {
        w.error = e instanceof Error ? e : new Error(String(e));
        return undefined;
      }),
    };
    return w;
  });
}

/** Stops every workload, prints what each wrote and verified; returns the first problem. */
export async function stopWorkloads(workloads: readonly VmWorkload[]): Promise<Error | undefined> {
  for (const w of workloads) w.stop.abort();
  let problem: Error | undefined;
  for (const w of workloads) {
    const s = await w.done;
    if (s === undefined) {
      const why = w.error?.message ?? 'no summary';
      process.stdout.write(`  workload ${w.vm}: failed: ${why}\n`);
      problem ??= w.error ?? new Error(why);
      continue;
    }
    const v = s.verified;
    process.stdout.write(
      `  workload ${w.vm}: ${s.ops} writes, ${s.mbPerSecond} MB/s for ${Math.round(s.seconds)} s; ` +
        `verified ${v?.blocks ?? 0} blocks, ${v?.mismatches.length ?? 0} mismatches (seed ${s.seed})\n`,
    );
    const first = v?.mismatches[0];
    if (first !== undefined) {
      problem ??= new SecondsiteError(
        'SS_VERIFY_FAILED',
        `${w.vm}: verification failed: ${first}`,
        {
          vm: w.vm,
          mismatches: v?.mismatches ?? [],
        },
      );
    }
  }
  return problem;
}
