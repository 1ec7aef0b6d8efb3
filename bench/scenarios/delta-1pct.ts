/**
 * delta-1pct (issue 3): one replication cycle that changed 1% of a disk in random 64 KiB
 * blocks, from the cut to the ack (shipped over mTLS to a second host agent process on
 * loopback, applied there with undo data, fsynced), against `rsync --inplace --no-whole-file`
 * bringing a second copy of the file up to date after the same change, in the same run.
 *
 * The hosts agree on live segments, so the blocks travel to the replica (and its undo data is
 * staged) while the bench writes them; the cut ships the segment's tail and point, and the
 * replica then applies the whole cycle. That is the product's normal path, not a bench mode:
 * the time measured is what an administrator waits between a cut and its point on the replica.
 *
 * Setup: two `secondsite host start` processes (127.0.1.1, 127.0.2.1) with test-CA
 * certificates, one VM paired primary → replica. The disk is filled with random data through
 * NBD in cycles of 256 MiB (at most a quarter of the disk; each shipped before the next, so the
 * journal stays under its cap), and the same bytes go to rsync's two files. Rounds alternate who goes first (page cache).
 * rsync runs with --ignore-times: its quick check (size + mtime) would otherwise skip a file
 * changed within the same second as its copy, and time nothing.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { resolve } from 'node:path';
import { HostLocalClient } from '../../agent/host/control/control-client.ts';
import { vmList } from '../../agent/host/main.ts';
import { NbdClient } from '../../common/nbd/client.ts';
import { seededRandom } from '../../test/helpers/seeded-random.ts';
import { median, result, type Scenario } from '../harness.ts';
import { pairHostProcesses, timed } from '../processes.ts';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const BLOCK = 64 * 1024;
/** Rounds, median taken: fsync latency on this shared disk varies from round to round. */
const ROUNDS = 5;

function benchBytes(): number {
  const env = process.env['BENCH_BYTES'];
  return env ? Number(env) : 2 * GiB;
}

/**
 * BENCH_COMPRESSION=on|off, default off: the changed blocks are random bytes, which zstd cannot
 * shrink, so compressing them only costs time here (on VM-like data it halves the bytes).
 */
function compression(): string {
  return process.env['BENCH_COMPRESSION'] ?? 'off';
}

/**
 * Cuts and resolves with the seconds until the primary reports the cycle acknowledged. One
 * control connection, opened beforehand, for the cut and the polls: a `secondsite host vm`
 * command per poll would time its own connection set-up as well.
 */
async function cycle(client: HostLocalClient): Promise<number> {
  const start = process.hrtime.bigint();
  const point = await client.cut({ name: 'vm1', appConsistent: false });
  for (;;) {
    const vm = (await client.listVms()).find((v) => v.name === 'vm1');
    const r = vm?.replication;
    if ((r?.lastAckedSeq ?? 0) >= point.segment) break;
    if (r?.state === 'stopped' || r?.state === 'incompatible') {
      throw new Error(`replication ${r.state}: ${r.lastError}`);
    }
    await new Promise((res) => setTimeout(res, 2));
  }
  return Number(process.hrtime.bigint() - start) / 1e9;
}

export const delta1pct: Scenario = {
  name: 'delta-1pct',
  description:
    'one cycle after changing 1% of a disk in random 64 KiB blocks, cut to ack at a second host agent over mTLS, vs rsync --inplace --no-whole-file',
  async run({ dir, say }) {
    const size = benchBytes();
    const hosts = await pairHostProcesses(dir, size, { compression: compression() });
    const { a } = hosts;
    try {
      const uri = (await vmList({ data: a.data }))[0]!.disks[0]!.nbd;
      const nbd = await NbdClient.connect(uri);
      const control = HostLocalClient.connect(resolve(a.data));
      const src = join(dir, 'rsync-src.raw');
      const dst = join(dir, 'rsync-dst.raw');
      // A quarter of the disk per fill cycle: the journal's cap is half the disk.
      const slice = Math.min(256 * MiB, size / 4);
      const fd = openSync(src, 'w', 0o600);
      try {
        for (let off = 0; off < size; off += slice) {
          for (let at = off; at < Math.min(size, off + slice); at += 8 * MiB) {
            const buf = randomBytes(Math.min(8 * MiB, size - at));
            await nbd.write(at, buf);
            writeSync(fd, buf, 0, buf.length, at);
          }
          await nbd.flush();
          await cycle(control);
        }
        say(`filled ${size / MiB} MiB on hv-a and replicated it to hv-b`);
        closeSync(fd);
        copyFileSync(src, dst);
        const r = seededRandom(Number(process.env['SEED'] ?? 1));
        const blocks = Math.max(1, Math.round((size * 0.01) / BLOCK));
        const ours: number[] = [];
        const theirs: number[] = [];
        for (let round = 0; round < ROUNDS; round++) {
          const sfd = openSync(src, 'r+');
          for (let k = 0; k < blocks; k++) {
            const off = r.int(size / BLOCK) * BLOCK;
            const buf = randomBytes(BLOCK);
            await nbd.write(off, buf);
            writeSync(sfd, buf, 0, BLOCK, off);
          }
          // Both sides start from durable changes: the NBD flush makes the journal's copy
          // durable, this fsync rsync's source (left dirty, it is flushed by whichever run's
          // fsyncs come first: measured, that made the first runner 2–3× slower).
          fsyncSync(sfd);
          closeSync(sfd);
          await nbd.flush();
          const runOurs = async () => void ours.push(await cycle(control));
          const runTheirs = async () =>
            void theirs.push(
              await timed('rsync', ['--inplace', '--no-whole-file', '--ignore-times', src, dst]),
            );
          if (round % 2 === 0) await runOurs().then(runTheirs);
          else await runTheirs().then(runOurs);
          say(
            `round ${round + 1}: ours ${ours[round]!.toFixed(3)} s, rsync ${theirs[round]!.toFixed(3)} s`,
          );
        }
        return [
          result(
            'delta-1pct',
            's',
            'lower-is-better',
            median(ours),
            median(theirs),
            'rsync --inplace --no-whole-file -I (local)',
            `${blocks} random 64 KiB blocks of a ${size / MiB} MiB disk, median of ${ROUNDS}; ours = cut → ack (the blocks travel live over mTLS to a second process while they are written; the cut ships the tail and the point, the replica applies with undo data, fsynced); compression ${compression()}`,
          ),
        ];
      } finally {
        await nbd.close().catch(() => undefined);
        control.close();
      }
    } finally {
      await hosts.stop();
    }
  },
};
