/**
 * Resync (issue 3, `resync`): a 2 GiB disk (BENCH_BYTES shrinks it) whose replica differs in 1%
 * of its 1 MiB chunks (4 KiB changed inside each). Ours: the source's resync engine
 * (`runResyncSource`, BLAKE3, 1 MiB chunks) in this process against the replica host in
 * another process (bench/serve-replica.ts) over ResyncHashes (gRPC, mutual TLS, loopback); the
 * replica has a recovery point, so it saves undo data before each differing chunk. Timed from
 * start to the replica's done (everything durable).
 * Baseline, same run, interleaved: `rsync --inplace --no-whole-file` of the source image onto
 * the same damaged replica image (local: rsync then reads both files, as we do).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../common/log/log.ts';
import { runResyncSource } from '../../agent/host/sync/resync-source.ts';
import { remoteResyncPeer } from '../../agent/host/transport/replication-client.ts';
import { median, result, type Scenario } from '../harness.ts';
import { timed } from '../processes.ts';
import {
  benchBytes,
  makeMaterial,
  openImageJournal,
  replicaClient,
  seconds,
  spawnReplica,
  writeMixedImage,
  type Material,
} from '../replica-process.ts';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
/**
 * Chunks per RangeHashes (and per batch of differing chunks). The engine defaults to 16; each
 * batch costs two round trips and a durable cursor on the replica, which dominate once hashing
 * runs at several GB/s, so the benchmark uses 64 (64 MiB buffers per side).
 */
const BATCH_CHUNKS = Number(process.env['BENCH_BATCH_CHUNKS'] ?? 64);

/** Changes 4 KiB inside a random 1% of the replica's 1 MiB chunks. */
function damage(path: string, size: number, seed: number): number {
  const chunks = Math.ceil(size / MiB);
  const picked = new Set<number>();
  let x = seed >>> 0;
  while (picked.size < Math.max(1, Math.round(chunks / 100))) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    picked.add(x % chunks);
  }
  const fd = openSync(path, 'r+');
  try {
    for (const c of picked) writeSync(fd, randomBytes(4096), 0, 4096, c * MiB + 8192);
  } finally {
    closeSync(fd);
  }
  return picked.size;
}

/** One resync of the (damaged) replica in `roundDir` from the source image; seconds. */
async function ours(
  roundDir: string,
  image: string,
  size: number,
  m: Material,
): Promise<{ s: number; sent: number; differing: number }> {
  const journal = await openImageJournal(roundDir, image);
  const replica = await spawnReplica(['replica', join(roundDir, 'replica'), String(size)], m, {
    BENCH_POINT: '1',
  });
  const client = replicaClient(replica.port, m);
  try {
    const peer = remoteResyncPeer(client, { vmId: 'bench', epoch: 1 });
    const t0 = process.hrtime.bigint();
    const stats = await runResyncSource({
      dir: roundDir,
      journal,
      diskSizes: [size],
      scope: 'all',
      rule: 'bench',
      peer,
      batchChunks: BATCH_CHUNKS,
      log: silentLogger,
    });
    return { s: seconds(t0), sent: peer.stats.payloadBytes, differing: stats.chunksDiffering };
  } finally {
    client.close();
    await replica.stop();
    await journal.close();
  }
}

export const resync: Scenario = {
  name: 'resync',
  description: 'resync of a 2 GiB disk whose replica differs in 1% of its chunks, vs rsync',
  async run({ dir, say }) {
    const size = benchBytes(2 * GiB);
    const image = join(dir, 'source.raw');
    writeMixedImage(image, size, 0.3);
    const m = makeMaterial();
    const times = { ours: [] as number[], rsync: [] as number[] };
    let last = { sent: 0, differing: 0, damaged: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      const roundDir = join(dir, `round-${round}`);
      mkdirSync(join(roundDir, 'replica'), { recursive: true });
      const replicaImage = join(roundDir, 'replica', 'replica.raw');
      copyFileSync(image, replicaImage);
      const damaged = damage(replicaImage, size, round + 1);
      await timed('sync', []);
      const r = await ours(roundDir, image, size, m);
      times.ours.push(r.s);
      last = { sent: r.sent, differing: r.differing, damaged };
      // The same damage again for rsync (ours repaired it).
      damage(replicaImage, size, round + 1);
      await timed('sync', []);
      times.rsync.push(
        await timed('rsync', [
          '--inplace',
          '--no-whole-file',
          '--ignore-times',
          image,
          replicaImage,
        ]),
      );
      rmSync(roundDir, { recursive: true, force: true });
      say(
        `round ${round + 1}: ours ${times.ours.at(-1)!.toFixed(2)} s ` +
          `(${r.differing} chunks differed, ${(r.sent / MiB).toFixed(1)} MiB sent), ` +
          `rsync ${times.rsync.at(-1)!.toFixed(2)} s`,
      );
    }
    return [
      result(
        'resync',
        's',
        'lower-is-better',
        median(times.ours),
        median(times.rsync),
        'rsync --inplace --no-whole-file',
        `median of ${ROUNDS}; ${(size / GiB).toFixed(2)} GiB, ${last.damaged} of ` +
          `${Math.ceil(size / MiB)} 1 MiB chunks damaged, ${last.differing} found differing, ` +
          `${(last.sent / MiB).toFixed(1)} MiB of chunk payload sent; replica keeps undo data`,
      ),
    ];
  },
};
