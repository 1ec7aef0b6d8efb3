/**
 * Resync through the engines (agent/host/sync/) over an in-process loopback; the gRPC transport
 * is tested separately. A replica first reaches a good point P by an initial copy; then the
 * replica is damaged behind the store's back, or the source's journal overflows, and a resync
 * brings it back while P stays readable.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log/log.ts';
import type { RecoveryPointRecord } from '../../agent/host/journal/types.ts';
import { alignToChunks, fromDirtyMap, totalBytes } from '../../agent/host/sync/chunk-grid.ts';
import { initialCopySource } from '../../agent/host/sync/initial-copy-source.ts';
import { InitialCopyTarget } from '../../agent/host/sync/initial-copy-target.ts';
import { runResyncSource } from '../../agent/host/sync/resync-source.ts';
import { ResyncTarget } from '../../agent/host/sync/resync-target.ts';
import { decideSync } from '../../agent/host/sync/resync-rules.ts';
import { bytesFor } from '../helpers/replica-model.ts';
import { seededRandom } from '../helpers/seeded-random.ts';
import {
  LoopbackPeer,
  fileBytes,
  guestWrites,
  makeImage,
  openReplica,
  openSource,
  shipSegments,
  sourceBytes,
  type LabJournal,
  type Replica,
} from '../helpers/sync-lab.ts';

const MiB = 1 << 20;
const SIZES = [16 * MiB, 4 * MiB];
const CHUNK = 64 * 1024;
const SEED = Number(process.env['SEED'] ?? Date.now() % 1e9);
console.log(`resync-loopback: SEED=${SEED}`);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'resync-'));
  const r = seededRandom(SEED);
  SIZES.forEach((s, i) => makeImage(join(dir, `src${i}.img`), s, CHUNK, r, 0.3));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Initial copy, then a cycle shipped: the replica is exactly at point P. */
async function replicated(
  capBytes?: number,
): Promise<{ j: LabJournal; rep: Replica; p: RecoveryPointRecord; shadow: Buffer[] }> {
  let j = await openSource(dir, SIZES);
  const rep = await openReplica(dir, SIZES);
  const src = await initialCopySource({
    journal: j,
    diskSizes: SIZES,
    chunkBytes: MiB,
    log: silentLogger,
  });
  const t = new InitialCopyTarget({
    dir: join(dir, 'replica'),
    disks: rep.disks,
    store: rep.store,
    log: silentLogger,
  });
  t.begin({ copyId: 'c', baseSeq: src.baseSeq, diskSizes: SIZES });
  for await (const c of src.chunks()) await t.write([c]);
  await t.finish();
  await guestWrites(j, SIZES, seededRandom(SEED + 9), 10);
  const p = await j.cut({ type: 'crash-consistent' });
  await shipSegments(j, rep.store, src.baseSeq);
  if (capBytes !== undefined) {
    await j.close();
    j = await openSource(dir, SIZES, { capBytes });
  }
  const shadow = await Promise.all(SIZES.map((s, i) => sourceBytes(j, i, s)));
  shadow.forEach((b, i) => expect(fileBytes(rep.paths[i]!).equals(b)).toBe(true));
  return { j, rep, p, shadow };
}

function expectPoint(rep: Replica, p: RecoveryPointRecord, shadow: Buffer[]): void {
  shadow.forEach((want, i) => {
    expect(rep.store.read(i, 0, want.length, p.id).equals(want), `disk ${i} at ${p.id}`).toBe(true);
  });
}

async function expectExact(j: LabJournal, rep: Replica): Promise<void> {
  for (const [i, size] of SIZES.entries()) {
    expect(fileBytes(rep.paths[i]!).equals(await sourceBytes(j, i, size)), `disk ${i}`).toBe(true);
  }
}

describe('resync', () => {
  it('sends only the ~1% of chunks that differ', async () => {
    const { j, rep } = await replicated();
    const r = seededRandom(SEED + 3);
    const chunks = SIZES.reduce((n, s) => n + s / CHUNK, 0);
    const damaged = new Set<string>();
    while (damaged.size < Math.round(chunks / 100)) {
      const disk = r.int(SIZES.length);
      const at = r.int(SIZES[disk]! / CHUNK) * CHUNK;
      if (damaged.has(`${disk}:${at}`)) continue;
      damaged.add(`${disk}:${at}`);
      rep.disks[disk]!.writeSync(at + r.int(CHUNK - 100), bytesFor(`x${at}`, 100));
    }
    const target = new ResyncTarget({ store: rep.store, disks: rep.disks, log: silentLogger });
    const peer = new LoopbackPeer(target);
    const d = decideSync({
      replicaExists: true,
      replicaSizesMatch: true,
      copyInProgress: false,
      onboardingExistingReplica: false,
      replicaUnclean: true,
      journalState: j.state,
      journalUntrusted: false,
      replicaLastApplied: rep.store.lastApplied,
      sourceOldestUnshipped: undefined,
      sourceActiveSeq: rep.store.lastApplied + 1,
    });
    expect(d.rule).toBe('replica-unclean');
    const stats = await runResyncSource({
      dir,
      journal: j,
      diskSizes: SIZES,
      scope: 'all',
      rule: d.rule,
      peer,
      chunkBytes: CHUNK,
      log: silentLogger,
    });
    expect(stats.chunksCompared).toBe(chunks);
    expect(stats.chunksDiffering).toBe(damaged.size);
    expect(peer.bytesSent).toBe(stats.bytesSent);
    expect(stats.bytesSent).toBeLessThanOrEqual(damaged.size * CHUNK);
    await expectExact(j, rep); // no writes since the base: exact already
    await guestWrites(j, SIZES, r, 5);
    const q = await j.cut({ type: 'crash-consistent' });
    await shipSegments(j, rep.store, stats.baseSeq);
    expect(rep.store.latest()?.id).toBe(q.id);
    await expectExact(j, rep);
    await rep.store.close();
    await j.close();
  });

  it('after a journal overflow hashes only the dirty ranges, keeps P readable throughout, and ends exact', async () => {
    const { j, rep, p, shadow } = await replicated(1 * MiB);
    const r = seededRandom(SEED + 4);
    while (j.state === 'journaling') await guestWrites(j, SIZES, r, 4);
    await guestWrites(j, SIZES, r, 10); // tracked in the dirty bitmap only
    const dirty = alignToChunks(fromDirtyMap(j.dirtyRanges()), SIZES, CHUNK);
    const d = decideSync({
      replicaExists: true,
      replicaSizesMatch: true,
      copyInProgress: false,
      onboardingExistingReplica: false,
      replicaUnclean: false,
      journalState: j.state,
      journalUntrusted: false,
      replicaLastApplied: rep.store.lastApplied,
      sourceOldestUnshipped: rep.store.lastApplied + 1,
      sourceActiveSeq: rep.store.lastApplied + 3,
    });
    expect(d.rule).toBe('journal-overflow');
    const target = new ResyncTarget({ store: rep.store, disks: rep.disks, log: silentLogger });
    let diffs = 0;
    const peer = new LoopbackPeer(target, {
      // The guest writes on during the resync; P must read exactly after every batch.
      beforeDiff: () => (++diffs % 4 === 0 ? guestWrites(j, SIZES, r, 1) : undefined),
      afterApply: () => expectPoint(rep, p, shadow),
    });
    const stats = await runResyncSource({
      dir,
      journal: j,
      diskSizes: SIZES,
      scope: 'dirty',
      rule: d.rule,
      peer,
      chunkBytes: CHUNK,
      log: silentLogger,
    });
    expect(target.bytesHashed).toBe(totalBytes(dirty));
    expect(stats.bytesHashed).toBe(totalBytes(dirty));
    expect(totalBytes(dirty)).toBeLessThan((SIZES[0]! + SIZES[1]!) / 4);
    expect(stats.chunksDiffering).toBeGreaterThan(0);
    expect(rep.store.latest()?.id).toBe(p.id); // nothing new advertised yet
    expectPoint(rep, p, shadow);
    const q = await j.cut({ type: 'crash-consistent' });
    await shipSegments(j, rep.store, stats.baseSeq);
    expect(rep.store.points().map((x) => x.id)).toEqual([p.id, q.id]);
    await expectExact(j, rep);
    expectPoint(rep, p, shadow); // still readable after the resync
    // Once P is pruned away, the resync's undo log goes with it.
    expect(rep.store.resyncState()?.state).toBe('finished');
    await rep.store.commit();
    expect(rep.store.resyncState()).toBeUndefined();
    await rep.reopen();
    await expectExact(j, rep);
    await rep.store.close();
    await j.close();
  });

  it('runs again when the journal overflows during the resync, and still ends exact', async () => {
    const { j, rep, p, shadow } = await replicated(1 * MiB);
    const r = seededRandom(SEED + 6);
    while (j.state === 'journaling') await guestWrites(j, SIZES, r, 4);
    const target = new ResyncTarget({ store: rep.store, disks: rep.disks, log: silentLogger });
    let flood = true;
    const peer = new LoopbackPeer(target, {
      beforeDiff: async () => {
        while (flood && j.state === 'journaling') await guestWrites(j, SIZES, r, 4);
        flood = false;
      },
      afterApply: () => expectPoint(rep, p, shadow),
    });
    const opts = {
      dir,
      journal: j,
      diskSizes: SIZES,
      scope: 'dirty' as const,
      rule: 'test',
      chunkBytes: CHUNK,
      log: silentLogger,
    };
    await expect(runResyncSource({ ...opts, peer })).rejects.toThrow(
      /overflowed during the resync/,
    );
    const first = rep.store.resyncState()?.id;
    const stats = await runResyncSource({ ...opts, peer });
    expect(rep.store.resyncState()?.id).not.toBe(first);
    expectPoint(rep, p, shadow);
    await j.cut({ type: 'crash-consistent' });
    await shipSegments(j, rep.store, stats.baseSeq);
    await expectExact(j, rep);
    expectPoint(rep, p, shadow);
    await rep.store.close();
    await j.close();
  });

  it('pauses, and a failover mid-resync reverts the replica to P exactly', async () => {
    const { j, rep, p, shadow } = await replicated();
    const r = seededRandom(SEED + 5);
    await guestWrites(j, SIZES, r, 30);
    const stop = new AbortController();
    const target = new ResyncTarget({ store: rep.store, disks: rep.disks, log: silentLogger });
    const peer = new LoopbackPeer(target, {
      afterApply: (n) => (n === 5 ? stop.abort() : undefined),
    });
    const opts = {
      dir,
      journal: j,
      diskSizes: SIZES,
      scope: 'all' as const,
      rule: 'test',
      chunkBytes: CHUNK,
      log: silentLogger,
    };
    const paused = await runResyncSource({ ...opts, peer, signal: stop.signal, batchChunks: 4 });
    expect(paused.paused).toBe(true);
    expect(rep.store.resyncState()?.cursor).toEqual({ disk: 0, offset: 5 * 4 * CHUNK });
    await expect(
      rep.store.apply({ seq: 99, point: { ...p, id: 'x', segment: 99 }, extents: [] }),
    ).rejects.toThrow(/resync/);
    // A reopen in between keeps the resync and P.
    await rep.reopen();
    expectPoint(rep, p, shadow);
    expect(rep.store.resyncState()?.state).toBe('running');
    await rep.store.revertTo(p.id);
    expect(rep.store.resyncState()).toBeUndefined();
    shadow.forEach((want, i) => expect(fileBytes(rep.paths[i]!).equals(want)).toBe(true));
    await rep.store.close();
    await j.close();
  });

  it('resumes a paused resync where the replica left off, even asked with another chunk size', async () => {
    const { j, rep, p, shadow } = await replicated();
    const r = seededRandom(SEED + 7);
    await guestWrites(j, SIZES, r, 40);
    const stop = new AbortController();
    const target = new ResyncTarget({ store: rep.store, disks: rep.disks, log: silentLogger });
    const peer = new LoopbackPeer(target, {
      afterApply: (n) => (n === 7 ? stop.abort() : undefined),
    });
    const opts = {
      dir,
      journal: j,
      diskSizes: SIZES,
      scope: 'all' as const,
      rule: 'test',
      log: silentLogger,
    };
    const first = await runResyncSource({ ...opts, peer, chunkBytes: CHUNK, signal: stop.signal });
    expect(first.paused).toBe(true);
    const id = rep.store.resyncState()?.id;
    await guestWrites(j, SIZES, r, 10);
    const rest = await runResyncSource({ ...opts, peer, chunkBytes: 4 * CHUNK });
    expect(rest.paused).toBe(false);
    expect(rest.baseSeq).toBe(first.baseSeq);
    expect(rep.store.resyncState()?.id).toBe(id);
    expect(first.chunksCompared + rest.chunksCompared).toBe(
      SIZES.reduce((n, s) => n + s / CHUNK, 0),
    );
    const q = await j.cut({ type: 'crash-consistent' });
    await shipSegments(j, rep.store, rest.baseSeq);
    expect(rep.store.latest()?.id).toBe(q.id);
    await expectExact(j, rep);
    expectPoint(rep, p, shadow);
    await rep.store.close();
    await j.close();
  });
});
