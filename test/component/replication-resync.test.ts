/**
 * ResyncHashes over the replication port: the source's resync engine (`runResyncSource`) runs
 * unchanged against the replica on "another host" through `remoteResyncPeer`, over real gRPC
 * with mutual TLS and a test CA (test/helpers/replication-pair.ts).
 *
 * 1. A replica reaches point P by an InitialCopy and one shipped cycle.
 * 2. 1% of its chunks are damaged behind the store's back; a resync sends only those (counted
 *    on the wire), P reads exactly after every batch while the guest keeps writing, and after
 *    the segments past the base the replica is bit-exact.
 * 3. A resync paused mid-way resumes on a new stream where the replica's cursor stands.
 * Negative step: a valid host not paired with the VM is refused.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isSecondsiteError } from '../../common/errors/errors.ts';
import { silentLogger } from '../../common/log/log.ts';
import type { RecoveryPointRecord } from '../../agent/host/journal/types.ts';
import { initialCopySource } from '../../agent/host/sync/initial-copy-source.ts';
import { runResyncSource } from '../../agent/host/sync/resync-source.ts';
import { remoteResyncPeer } from '../../agent/host/transport/replication-client.ts';
import { bytesFor } from '../helpers/replica-model.ts';
import { startPair, VM, type Pair } from '../helpers/replication-pair.ts';
import { seededRandom } from '../helpers/seeded-random.ts';
import {
  LoopbackPeer,
  fileBytes,
  guestWrites,
  makeImage,
  openReplica,
  openSource,
  sourceBytes,
  type LabJournal,
  type Replica,
} from '../helpers/sync-lab.ts';
import { hostIdentity } from '../helpers/test-ca.ts';
import { waitFor } from '../helpers/wait-for.ts';

const MiB = 1 << 20;
const SIZES = [48 * MiB, 16 * MiB];
const TOTAL = SIZES[0]! + SIZES[1]!;
const CHUNK = 64 * 1024;
const SEED = Number(process.env['SEED'] ?? Date.now() % 1e9);
console.log(`replication-resync: SEED=${SEED}`);

let dir: string;
let j: LabJournal;
let rep: Replica;
let pair: Pair;
let p: RecoveryPointRecord;
let shadow: Buffer[];

/** Initial copy over the network, then one cycle shipped: the replica is exactly at P. */
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'net-resync-'));
  const r = seededRandom(SEED);
  SIZES.forEach((s, i) => makeImage(join(dir, `src${i}.img`), s, CHUNK, r, 0.3));
  j = await openSource(dir, SIZES);
  rep = await openReplica(dir, SIZES);
  pair = await startPair(() => rep, { dir });
  const copy = await pair.client().initialCopy({
    vmId: VM,
    epoch: 1,
    copyId: 'c',
    diskSizes: SIZES,
    source: (at) =>
      initialCopySource({ journal: j, diskSizes: SIZES, from: at.from, log: silentLogger }),
  });
  await guestWrites(j, SIZES, seededRandom(SEED + 9), 10);
  p = await j.cut({ type: 'crash-consistent' });
  await pair.ship(j, copy.baseSeq);
  shadow = await Promise.all(SIZES.map((s, i) => sourceBytes(j, i, s)));
  shadow.forEach((b, i) => expect(fileBytes(rep.paths[i]!).equals(b)).toBe(true));
});

afterEach(async () => {
  await pair.close();
  await rep.store.close();
  await j.close();
  rmSync(dir, { recursive: true, force: true });
});

function expectP(): void {
  shadow.forEach((want, i) => {
    expect(rep.store.read(i, 0, want.length, p.id).equals(want), `disk ${i} at P`).toBe(true);
  });
}

/** `checkP`: P reads exactly (not after damage behind the store's back: P holds the damage). */
async function expectExactAfterShipping(baseSeq: number, checkP = true): Promise<void> {
  const q = await j.cut({ type: 'crash-consistent' });
  await pair.ship(j, baseSeq);
  expect(rep.store.latest()?.id).toBe(q.id);
  for (const [i, size] of SIZES.entries()) {
    expect(fileBytes(rep.paths[i]!).equals(await sourceBytes(j, i, size)), `disk ${i}`).toBe(true);
  }
  if (checkP) expectP(); // P is still readable after the resync
}

/** Damages `share` of the replica's chunks (100 bytes each), behind the store's back. */
function damage(share: number, seed: number): number {
  const r = seededRandom(seed);
  const hit = new Set<string>();
  while (hit.size < Math.round((TOTAL / CHUNK) * share)) {
    const disk = r.int(SIZES.length);
    const at = r.int(SIZES[disk]! / CHUNK) * CHUNK;
    if (hit.has(`${disk}:${at}`)) continue;
    hit.add(`${disk}:${at}`);
    rep.disks[disk]!.writeSync(at + r.int(CHUNK - 100), bytesFor(`x${seed}:${at}`, 100));
  }
  return hit.size;
}

const resyncOpts = {
  scope: 'all' as const,
  rule: 'replica-unclean',
  chunkBytes: CHUNK,
  diskSizes: SIZES,
  log: silentLogger,
};

describe('ResyncHashes over mTLS', () => {
  it('sends only the ~1% of chunks that differ, counted on the wire, and ends exact', async () => {
    const damaged = damage(0.01, SEED + 3);
    const r = seededRandom(SEED + 4);
    const remote = remoteResyncPeer(pair.client(), { vmId: VM, epoch: 1 });
    let diffs = 0;
    const peer = new LoopbackPeer(remote, {
      beforeDiff: () => (++diffs % 8 === 0 ? guestWrites(j, SIZES, r, 1) : undefined),
    });
    const stats = await runResyncSource({ ...resyncOpts, dir, journal: j, peer });
    expect(stats.chunksCompared).toBe(TOTAL / CHUNK);
    // Guest writes after the base can make a few more chunks differ; never fewer.
    expect(stats.chunksDiffering).toBeGreaterThanOrEqual(damaged);
    expect(stats.chunksDiffering).toBeLessThanOrEqual(damaged + diffs);
    // Counted on the wire: the differing chunks' bytes and nothing else (~1%), plus hashes.
    expect(remote.stats.payloadBytes).toBe(stats.bytesSent);
    expect(remote.stats.payloadBytes).toBeLessThanOrEqual(stats.chunksDiffering * CHUNK);
    expect(remote.stats.payloadBytes).toBeGreaterThanOrEqual(damaged * CHUNK * 0.5);
    expect(remote.stats.payloadBytes / TOTAL).toBeLessThan(0.02);
    expect(remote.stats.hashBytes).toBe((TOTAL / CHUNK) * 32);
    expect(rep.store.latest()?.id).toBe(p.id); // nothing new advertised before base + 1
    await expectExactAfterShipping(stats.baseSeq, false);
  });

  it('keeps P readable after every batch, and resumes a paused resync on a new stream', async () => {
    // The source moved on past P (journaled writes the replica never got, e.g. lost with a
    // journal): the resync rewrites those chunks while P must stay readable.
    const r = seededRandom(SEED + 6);
    await guestWrites(j, SIZES, r, 40);
    const stop = new AbortController();
    const client = pair.client();
    const first = remoteResyncPeer(client, { vmId: VM, epoch: 1 });
    let diffs = 0;
    const peer = new LoopbackPeer(first, {
      beforeDiff: () => (++diffs % 8 === 0 ? guestWrites(j, SIZES, r, 1) : undefined),
      // P is read in full every 5th batch (each read is the whole 64 MiB).
      afterApply: (n) => {
        if (n % 5 === 0) expectP();
        if (n === 20) stop.abort();
      },
    });
    const opts = { ...resyncOpts, dir, journal: j, batchChunks: 8 };
    const paused = await runResyncSource({ ...opts, peer, signal: stop.signal });
    expect(paused.paused).toBe(true);
    first.cancel();
    expect(rep.store.resyncState()?.cursor).toEqual({ disk: 0, offset: 20 * 8 * CHUNK });
    expectP();
    // The server frees the VM once it has seen the cancelled stream end.
    const rest = await waitFor(async () => {
      try {
        const again = remoteResyncPeer(client, { vmId: VM, epoch: 1 });
        const checked = new LoopbackPeer(again, {
          afterApply: (n) => (n % 10 === 0 ? expectP() : undefined),
        });
        return await runResyncSource({ ...opts, peer: checked });
      } catch (e) {
        if (isSecondsiteError(e) && e.code === 'SS_CONFLICT') return undefined;
        throw e;
      }
    });
    expect(rest.paused).toBe(false);
    expect(rest.baseSeq).toBe(paused.baseSeq);
    expect(paused.chunksCompared + rest.chunksCompared).toBe(TOTAL / CHUNK);
    expect(paused.chunksDiffering + rest.chunksDiffering).toBeGreaterThan(0);
    await expectExactAfterShipping(rest.baseSeq);
  });

  it('refuses a valid host that is not paired with the VM', async () => {
    const stranger = remoteResyncPeer(pair.client(hostIdentity('v1', 'hv-c')), {
      vmId: VM,
      epoch: 1,
    });
    const e = await stranger
      .begin({ id: 'r', algorithm: 'blake3', chunkBytes: CHUNK })
      .then(() => undefined)
      .catch((x: unknown) => x);
    expect(isSecondsiteError(e) && e.code).toBe('SS_NOT_PAIRED');
    expect(rep.store.resyncState()).toBeUndefined();
  });
});
