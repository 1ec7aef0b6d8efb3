/**
 * The ticket port's throughput (issue 7, `initial-copy-8083`): the initial copy of
 * initial-copy.ts, once over the replica process's 8083 (AP exchange, then gRPC over sealed
 * frames, AES-256-GCM) and once over its 8084 (gRPC over mutual TLS), in the same run and
 * interleaved, the order swapped every round (the machine is noisy; whoever runs second sees
 * the other's writeback). Both copies reach the same replica process and the same gRPC server,
 * so the ratio isolates the channel. Goal: 8083 ≥ 0.8× 8084.
 *
 * The row: ours = 8083 GB/s, baseline = 8084 GB/s, ratio = 8083 ÷ 8084 (median of each). The
 * notes add each round's ratio and the CPU seconds per GB each side spent per channel (the
 * source's own process.cpuUsage, the replica's from /proc), which move far less than wall time
 * when other work shares the machine.
 */
import { join } from 'node:path';
import { median, result, type Scenario } from '../harness.ts';
import { timed } from '../processes.ts';
import {
  benchBytes,
  makeMaterial,
  ownCpuSeconds,
  replicaClient,
  replicaTicketClient,
  seconds,
  spawnReplica,
  withTicketKey,
} from '../replica-process.ts';
import { copyOnce, openSource } from './initial-copy.ts';

const GiB = 2 ** 30;
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);

export const initialCopy8083: Scenario = {
  name: 'initial-copy-8083',
  description: 'the initial copy over the ticket port (8083) against 8084, same replica process',
  async run({ dir, say }) {
    const size = benchBytes(2 * GiB);
    const { journal } = await openSource(dir, size);
    const m = withTicketKey(makeMaterial());
    const replica = await spawnReplica(['replica', join(dir, 'replica'), String(size)], m);
    if (replica.ticketPort === undefined) throw new Error('the replica process serves no 8083');
    const channels = {
      '8084': replicaClient(replica.port, m),
      '8083': replicaTicketClient(replica.ticketPort, m.hostKey),
    };
    type Port = keyof typeof channels;
    const times: Record<Port, number[]> = { '8084': [], '8083': [] };
    // CPU seconds per copy on each side: steadier than wall time on a shared machine, and they
    // say which side the channel costs more on.
    const cpu: Record<Port, { source: number[]; replica: number[] }> = {
      '8084': { source: [], replica: [] },
      '8083': { source: [], replica: [] },
    };
    let copies = 0;
    try {
      // Warm-up, untimed: one copy per channel. The first copy over 8083 allocates its cipher
      // output buffers from memory never touched before (slow on these VMs, LAB.md) where TLS
      // reuses one buffer; later copies reuse what the first one freed.
      for (const port of ['8084', '8083'] as const) {
        await copyOnce(channels[port], journal, size, `warm-${port}`);
      }
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 ? (['8083', '8084'] as const) : (['8084', '8083'] as const);
        for (const port of order) {
          // Every copy starts with no dirty pages of the previous one still being written back.
          await timed('sync', []);
          const [s0, r0] = [ownCpuSeconds(), replica.cpuSeconds()];
          const t0 = process.hrtime.bigint();
          await copyOnce(channels[port], journal, size, `copy-${copies++}`);
          times[port].push(seconds(t0));
          cpu[port].source.push(ownCpuSeconds() - s0);
          cpu[port].replica.push(replica.cpuSeconds() - r0);
        }
        say(
          `round ${round + 1}: 8083 ${times['8083'].at(-1)!.toFixed(2)} s, ` +
            `8084 ${times['8084'].at(-1)!.toFixed(2)} s`,
        );
      }
    } finally {
      channels['8083'].close();
      channels['8084'].close();
      await replica.stop();
      await journal.close();
    }
    const rate = (xs: number[]): number => size / 1e9 / median(xs);
    const perRound = times['8083'].map((t, i) => (times['8084'][i]! / t).toFixed(2)).join(', ');
    const perGb = (xs: number[]): string => (median(xs) / (size / 1e9)).toFixed(2);
    const cpuNote = (p: Port): string =>
      `${p} source ${perGb(cpu[p].source)}, replica ${perGb(cpu[p].replica)}`;
    return [
      result(
        'initial-copy-8083',
        'GB/s',
        'higher-is-better',
        rate(times['8083']),
        rate(times['8084']),
        '8084 (mTLS gRPC), same run',
        `median of ${ROUNDS} interleaved rounds; ${(size / GiB).toFixed(2)} GiB disk (30% zero); ` +
          `8083 ÷ 8084 per round: ${perRound}; CPU s per GB of disk (median): ` +
          `${cpuNote('8083')}; ${cpuNote('8084')}`,
      ),
    ];
  },
};
