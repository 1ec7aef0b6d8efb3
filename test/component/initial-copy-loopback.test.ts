/**
 * Initial replication through the engines (agent/host/sync/) over an in-process loopback; the
 * gRPC transport is tested separately. The guest keeps writing through the journal while the
 * copy runs; after the post-copy segments the replica is bit-exact.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log/log.ts';
import { initialCopySource } from '../../agent/host/sync/initial-copy-source.ts';
import { InitialCopyTarget } from '../../agent/host/sync/initial-copy-target.ts';
import { runResyncSource } from '../../agent/host/sync/resync-source.ts';
import { ResyncTarget } from '../../agent/host/sync/resync-target.ts';
import { decideSync } from '../../agent/host/sync/resync-rules.ts';
import { seededRandom } from '../helpers/seeded-random.ts';
import {
  fileBytes,
  guestWrites,
  LoopbackPeer,
  makeImage,
  openReplica,
  openSource,
  shipSegments,
  sourceBytes,
} from '../helpers/sync-lab.ts';

const MiB = 1 << 20;
const SIZES = [12 * MiB, 5 * MiB + 64 * 1024];
const CHUNK = 256 * 1024;
const SEED = Number(process.env['SEED'] ?? Date.now() % 1e9);
console.log(`initial-copy-loopback: SEED=${SEED}`);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'icopy-'));
  const r = seededRandom(SEED);
  SIZES.forEach((s, i) => makeImage(join(dir, `src${i}.img`), s, CHUNK, r, 0.3));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('initial copy', () => {
  it('sends zero chunks as zero ranges and ends bit-exact after the post-copy segments', async () => {
    const r = seededRandom(SEED + 1);
    const j = await openSource(dir, SIZES);
    const rep = await openReplica(dir, SIZES);
    const src = await initialCopySource({
      journal: j,
      diskSizes: SIZES,
      chunkBytes: CHUNK,
      log: silentLogger,
    });
    const target = new InitialCopyTarget({
      dir: join(dir, 'replica'),
      disks: rep.disks,
      diskPaths: rep.paths,
      store: rep.store,
      flushEveryBytes: 4 * MiB,
      log: silentLogger,
    });
    expect(target.begin({ copyId: 'c1', baseSeq: src.baseSeq, diskSizes: SIZES })).toEqual({
      disk: 0,
      offset: 0,
    });
    let zero = 0;
    let data = 0;
    let n = 0;
    for await (const c of src.chunks()) {
      if (c.data === null) zero++;
      else data++;
      await target.write([c]);
      // The guest writes on while the copy runs, and cycles keep cutting points.
      if (++n % 7 === 0) await guestWrites(j, SIZES, r, 3);
      if (n % 23 === 0) await j.cut({ type: 'crash-consistent' });
    }
    expect(src.progress()).toEqual({
      bytesDone: SIZES[0]! + SIZES[1]!,
      bytesTotal: SIZES[0]! + SIZES[1]!,
    });
    // About 30% of the chunks were zero (plus the zero tail of the odd-sized disk); the seeded
    // draw over this few chunks varies (SEED=648982525 gives 13%), so the floor only proves
    // zero chunks travel as zero ranges.
    expect(zero / (zero + data)).toBeGreaterThan(0.05);
    expect(zero / (zero + data)).toBeLessThan(0.45);
    await target.finish();
    expect(rep.store.latest()).toBeUndefined(); // no point until the first post-base segment
    await guestWrites(j, SIZES, r, 5);
    const last = await j.cut({ type: 'crash-consistent' });
    expect(await shipSegments(j, rep.store, src.baseSeq)).toBeGreaterThan(0);
    expect(rep.store.latest()?.id).toBe(last.id);
    for (const [i, size] of SIZES.entries()) {
      const want = await sourceBytes(j, i, size);
      expect(fileBytes(rep.paths[i]!).equals(want)).toBe(true);
      expect(rep.store.read(i, 0, size, last.id).equals(want)).toBe(true);
    }
    await rep.store.close();
    await j.close();
  });

  it('resumes an interrupted copy at its watermark without redoing durable chunks', async () => {
    const r = seededRandom(SEED + 2);
    const j = await openSource(dir, SIZES);
    const rep = await openReplica(dir, SIZES);
    const mk = () =>
      new InitialCopyTarget({
        dir: join(dir, 'replica'),
        disks: rep.disks,
        diskPaths: rep.paths,
        store: rep.store,
        flushEveryBytes: 2 * MiB,
        log: silentLogger,
      });
    const first = await initialCopySource({
      journal: j,
      diskSizes: SIZES,
      chunkBytes: CHUNK,
      log: silentLogger,
    });
    const t1 = mk();
    t1.begin({ copyId: 'c2', baseSeq: first.baseSeq, diskSizes: SIZES });
    const total = SIZES.reduce((n, s) => n + Math.ceil(s / CHUNK), 0);
    const stopAt = 10 + r.int(total - 20);
    let n = 0;
    for await (const c of first.chunks()) {
      await t1.write([c]);
      if (n % 5 === 0) await guestWrites(j, SIZES, r, 2);
      // Flushes are pipelined (one in flight, in the background): make one watermark durable
      // a few chunks before the break, so the chunks after it are the ones to redo.
      if (n === stopAt - 4) await t1.flush();
      if (++n === stopAt) break; // the connection breaks: nothing flushed since the watermark
    }
    // A new attempt (a restart of both engines) asks the replica where to begin.
    const t2 = mk();
    const pending = t2.pending();
    expect(pending?.copyId).toBe('c2');
    const from = t2.begin({ copyId: 'c2', baseSeq: pending!.baseSeq, diskSizes: SIZES });
    const doneBytes = t2.progress().bytesDone;
    expect(doneBytes).toBeGreaterThan(0);
    expect(doneBytes).toBeLessThanOrEqual(stopAt * CHUNK);
    const again = await initialCopySource({
      journal: j,
      diskSizes: SIZES,
      chunkBytes: CHUNK,
      baseSeq: pending!.baseSeq,
      from,
      log: silentLogger,
    });
    expect(again.baseSeq).toBe(first.baseSeq);
    let resent = 0;
    for await (const c of again.chunks()) {
      await t2.write([c]);
      resent++;
    }
    expect(resent).toBe(total - doneBytes / CHUNK);
    await t2.finish();
    expect(mk().pending()).toBeUndefined();
    await guestWrites(j, SIZES, r, 4);
    await j.cut({ type: 'crash-consistent' });
    await shipSegments(j, rep.store, first.baseSeq);
    for (const [i, size] of SIZES.entries()) {
      expect(fileBytes(rep.paths[i]!).equals(await sourceBytes(j, i, size))).toBe(true);
    }
    await rep.store.close();
    await j.close();
  });

  it('stops when the journal overflows mid-copy; the table then asks for a full compare, which ends exact', async () => {
    const r = seededRandom(SEED + 3);
    const j = await openSource(dir, SIZES, { capBytes: MiB });
    const rep = await openReplica(dir, SIZES);
    const src = await initialCopySource({
      journal: j,
      diskSizes: SIZES,
      chunkBytes: CHUNK,
      log: silentLogger,
    });
    const target = new InitialCopyTarget({
      dir: join(dir, 'replica'),
      disks: rep.disks,
      store: rep.store,
      flushEveryBytes: MiB,
      log: silentLogger,
    });
    target.begin({ copyId: 'c3', baseSeq: src.baseSeq, diskSizes: SIZES });
    const copy = async () => {
      for await (const c of src.chunks()) {
        await target.write([c]);
        await guestWrites(j, SIZES, r, 2);
      }
    };
    await expect(copy()).rejects.toThrow(/overflowed during the copy/);
    const d = decideSync({
      replicaExists: true,
      replicaSizesMatch: true,
      copyInProgress: target.pending() !== undefined,
      onboardingExistingReplica: false,
      replicaUnclean: false,
      journalState: j.state,
      journalUntrusted: false,
      replicaLastApplied: rep.store.lastApplied,
      sourceOldestUnshipped: undefined,
      sourceActiveSeq: src.baseSeq + 1,
    });
    expect(d).toMatchObject({
      rule: 'copy-interrupted',
      action: { kind: 'hash-compare', scope: 'all' },
    });
    const peer = new LoopbackPeer(
      new ResyncTarget({ store: rep.store, disks: rep.disks, log: silentLogger }),
    );
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
    expect(rep.store.lastApplied).toBe(stats.baseSeq); // no points to keep: rebased
    await guestWrites(j, SIZES, r, 3);
    const q = await j.cut({ type: 'crash-consistent' });
    await shipSegments(j, rep.store, stats.baseSeq);
    expect(rep.store.latest()?.id).toBe(q.id);
    for (const [i, size] of SIZES.entries()) {
      expect(fileBytes(rep.paths[i]!).equals(await sourceBytes(j, i, size))).toBe(true);
    }
    await rep.store.close();
    await j.close();
  });
});
