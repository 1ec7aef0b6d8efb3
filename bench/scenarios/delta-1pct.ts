/**
 * delta-1pct (issue 3): one replication cycle that changed 1% of a disk in random 64 KiB
 * blocks, from the cut to the ack (shipped over mTLS to a second host agent process on
 * loopback, applied there with undo data, fsynced), against `rsync --inplace --no-whole-file`
 * bringing a second copy of the file up to date after the same change, in the same run.
 *
 * Setup: two `secondsite host start` processes (127.0.1.1, 127.0.2.1) with test-CA
 * certificates, one VM paired primary → replica. The disk is filled with random data through
 * NBD in cycles of 256 MiB (at most a quarter of the disk) (each shipped before the next, so the journal stays under its cap), and
 * the same bytes go to rsync's two files. Rounds alternate who goes first (page cache).
 * rsync runs with --ignore-times: its quick check (size + mtime) would otherwise skip a file
 * changed within the same second as its copy, and time nothing.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { vmCut, vmList } from '../../agent/host/main.ts';
import { NbdClient } from '../../common/nbd/client.ts';
import { seededRandom } from '../../test/helpers/seeded-random.ts';
import { median, result, type Scenario } from '../harness.ts';
import { pairHostProcesses, timed } from '../processes.ts';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const BLOCK = 64 * 1024;
const ROUNDS = 3;

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

/** Cuts and resolves with the seconds until the primary reports the cycle acknowledged. */
async function cycle(data: string): Promise<number> {
  const start = process.hrtime.bigint();
  const point = await vmCut({ data, name: 'vm1' });
  for (;;) {
    const vm = (await vmList({ data })).find((v) => v.name === 'vm1');
    const r = vm?.replication;
    if ((r?.lastAckedSeq ?? 0) >= point.segment) break;
    if (r?.state === 'stopped' || r?.state === 'incompatible') {
      throw new Error(`replication ${r.state}: ${r.lastError}`);
    }
    await new Promise((res) => setTimeout(res, 5));
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
          await cycle(a.data);
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
          closeSync(sfd);
          await nbd.flush();
          const runOurs = async () => void ours.push(await cycle(a.data));
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
            `${blocks} random 64 KiB blocks of a ${size / MiB} MiB disk, median of ${ROUNDS}; ours = cut → ack (shipped over mTLS to a second process, applied with undo data, fsynced); compression ${compression()}`,
          ),
        ];
      } finally {
        await nbd.close().catch(() => undefined);
      }
    } finally {
      await hosts.stop();
    }
  },
};
