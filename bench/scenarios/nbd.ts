/**
 * Storage-path benchmarks (issue 2): our journaled NBD export against qemu-nbd serving a plain
 * raw file, with the same client on both sides.
 */
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { NbdClient } from '../../common/nbd/client.ts';
import { createSparseImage } from '../../agent/host/vm/raw-disk.ts';
import { median, percentile, result, type Scenario } from '../harness.ts';
import { serveOurs, serveQemuNbd, timed, type Served } from '../processes.ts';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

function benchBytes(defaultBytes: number): number {
  const env = process.env['BENCH_BYTES'];
  return env ? Number(env) : defaultBytes;
}

/** A source file of incompressible, non-zero data (so no client skips it as a hole). */
function writeSource(path: string, size: number): void {
  const fd = openSync(path, 'w', 0o600);
  const block = randomBytes(8 * MiB);
  for (let off = 0; off < size; off += block.length) {
    block.writeUInt32LE(off / block.length, 0); // every block differs
    writeSync(fd, block, 0, Math.min(block.length, size - off), off);
  }
  closeSync(fd);
}

async function withServer<T>(
  serve: () => Promise<Served>,
  use: (uri: string) => Promise<T>,
): Promise<T> {
  const s = await serve();
  try {
    return await use(s.uri);
  } finally {
    await s.stop();
  }
}

export const nbdSeqWrite: Scenario = {
  name: 'nbd-seq-write',
  description:
    '1 MiB sequential writes through the export (nbdcopy), journal on, vs qemu-nbd on a raw file',
  async run({ dir, say }) {
    const size = benchBytes(2 * GiB);
    const src = join(dir, 'source.raw');
    writeSource(src, size);
    const copy = (uri: string): Promise<number> =>
      timed('nbdcopy', [
        '--request-size=1048576',
        '--connections=1',
        '--sparse=0',
        '--flush',
        src,
        uri,
      ]);
    const ours: number[] = [];
    const oursWithCut: number[] = [];
    const theirs: number[] = [];
    const ROUNDS = 3;
    for (let round = 0; round < ROUNDS; round++) {
      const qdir = join(dir, `q${round}`);
      const odir = join(dir, `o${round}`);
      mkdirSync(qdir);
      mkdirSync(odir);
      const qfile = join(qdir, 'disk0.raw');
      createSparseImage(qfile, size);
      const runTheirs = async (): Promise<void> => {
        theirs.push(await withServer(() => serveQemuNbd(qfile, join(qdir, 'q.sock')), copy));
      };
      // The journal defers the raw disk's copy of the data to the next cut; the second figure
      // includes that cut, so a whole cycle's cost is on the table, not only the guest's view.
      const runOurs = async (): Promise<void> => {
        const served = await serveOurs(odir, 'journal', size);
        try {
          const t = await copy(served.uri);
          const cutMs = await served.cut!();
          ours.push(t);
          oursWithCut.push(t + cutMs / 1000);
        } finally {
          await served.stop();
        }
      };
      // Alternate who goes first: the page cache and the disk's write-back favour the second.
      if (round % 2 === 0) await runTheirs().then(runOurs);
      else await runOurs().then(runTheirs);
      say(
        `round ${round + 1}: ours ${ours[round]!.toFixed(2)} s (+cut ${oursWithCut[round]!.toFixed(2)} s), qemu-nbd ${theirs[round]!.toFixed(2)} s`,
      );
      rmSync(qdir, { recursive: true });
      rmSync(odir, { recursive: true });
    }
    const rate = (t: number): number => size / MiB / t;
    const how = `${size / MiB} MiB via nbdcopy --request-size=1M --flush, median of ${ROUNDS} runs each`;
    return [
      result(
        'nbd-seq-write',
        'MiB/s',
        'higher-is-better',
        rate(median(ours)),
        rate(median(theirs)),
        'qemu-nbd (raw file, no journal)',
        `${how}; what the guest sees (the raw disk catches up at the next cut)`,
      ),
      result(
        'nbd-seq-write+cut',
        'MiB/s',
        'higher-is-better',
        rate(median(oursWithCut)),
        rate(median(theirs)),
        'qemu-nbd (raw file, no journal)',
        `${how}; includes the cut that seals the segment and brings the raw disk up to date`,
      ),
    ];
  },
};

async function fuaRun(
  uri: string,
  ops: number,
  size: number,
): Promise<{ opsPerSec: number; lat: number[] }> {
  const client = await NbdClient.connect(uri);
  try {
    const buf = randomBytes(4096);
    const blocks = size / 4096;
    const lat: number[] = [];
    let seed = 12345;
    const start = process.hrtime.bigint();
    for (let i = 0; i < ops; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const t0 = process.hrtime.bigint();
      await client.write((seed % blocks) * 4096, buf, { fua: true });
      lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    return { opsPerSec: ops / secs, lat };
  } finally {
    await client.close();
  }
}

export const nbdFua4k: Scenario = {
  name: 'nbd-fua-4k',
  description: '4 KiB random writes with FUA, queue depth 1, our client on both servers',
  async run({ dir, say }) {
    const size = 1 * GiB;
    const ops = Number(process.env['BENCH_FUA_OPS'] ?? 3000);
    const qfile = join(dir, 'q.raw');
    createSparseImage(qfile, size);
    const theirs = await withServer(
      () => serveQemuNbd(qfile, join(dir, 'q.sock')),
      (u) => fuaRun(u, ops, size),
    );
    const ours = await withServer(
      () => serveOurs(dir, 'journal', size),
      (u) => fuaRun(u, ops, size),
    );
    const fmt = (r: { lat: number[] }): string =>
      `p50 ${percentile(r.lat, 50).toFixed(3)} ms, p99 ${percentile(r.lat, 99).toFixed(3)} ms`;
    say(
      `ours ${ours.opsPerSec.toFixed(0)} ops/s (${fmt(ours)}); qemu-nbd ${theirs.opsPerSec.toFixed(0)} ops/s (${fmt(theirs)})`,
    );
    return [
      result(
        'nbd-fua-4k',
        'ops/s',
        'higher-is-better',
        ours.opsPerSec,
        theirs.opsPerSec,
        'qemu-nbd (raw file, no journal)',
        `ours ${fmt(ours)}; qemu-nbd ${fmt(theirs)}; ${ops} ops`,
      ),
    ];
  },
};
