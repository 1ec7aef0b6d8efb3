/**
 * kill -9 of the replica side mid-resync (child: test/helpers/resync-crash-driver.ts), several
 * times at random moments. After every kill, reopening the store must leave the last good
 * point P exactly readable and the resync resumable; the last attempt finishes, segment
 * base + 1 makes the replica exact, and P is still readable.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log/log.ts';
import { initialCopySource } from '../../agent/host/sync/initial-copy-source.ts';
import { InitialCopyTarget } from '../../agent/host/sync/initial-copy-target.ts';
import { seededRandom, testSeed } from '../helpers/seeded-random.ts';
import {
  fileBytes,
  guestWrites,
  makeImage,
  openReplica,
  openSource,
  shipSegments,
  sourceBytes,
} from '../helpers/sync-lab.ts';

const MiB = 1 << 20;
const SIZES = [12 * MiB, 4 * MiB];
const CHUNK = 64 * 1024;
const KILLS = 6;
const ROOT = resolve(import.meta.dirname, '../..');

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * Runs the driver; SIGKILLs it `delayMs` after it prints `batch <killAt>` (or `killAfterReadyMs`
 * after `ready`); resolves with its output lines.
 */
function runDriver(
  args: object,
  killAt: number | undefined,
  delayMs: number,
  killAfterReadyMs?: number,
): Promise<string[]> {
  const child = spawn(
    process.execPath,
    ['bin/run-ts.mjs', 'test/helpers/resync-crash-driver.ts', JSON.stringify(args)],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const lines: string[] = [];
  let partial = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      if (killAfterReadyMs !== undefined && line === 'ready') {
        setTimeout(() => child.kill('SIGKILL'), killAfterReadyMs);
      }
      if (killAt !== undefined && line === `batch ${killAt}`)
        setTimeout(() => child.kill('SIGKILL'), delayMs);
    }
  });
  return new Promise((done, fail) => {
    child.on('error', fail);
    child.on('exit', () => done(lines));
  });
}

async function setup(label: string) {
  const seed = testSeed(label);
  const r = seededRandom(seed);
  const dir = mkdtempSync(join(tmpdir(), 'ss-resync-crash-'));
  dirs.push(dir);
  SIZES.forEach((s, i) => makeImage(join(dir, `src${i}.img`), s, CHUNK, r, 0.3));
  // The replica reaches P by an initial copy and one cycle.
  const j = await openSource(dir, SIZES);
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
  const p = await j.cut({ type: 'crash-consistent' });
  await shipSegments(j, rep.store, src.baseSeq);
  const shadow = await Promise.all(SIZES.map((s, i) => sourceBytes(j, i, s)));
  // Then the source diverges (its journal is lost: a resync of everything).
  await guestWrites(j, SIZES, r, 200);
  const baseSeq = rep.store.lastApplied + 3;
  await j.close();
  await rep.store.close();
  return { r, dir, p, shadow, baseSeq };
}

describe('resync crash safety', () => {
  it('keeps the last good point through kill -9 mid-resync and finishes after restarts', async () => {
    const { r, dir, p, shadow, baseSeq } = await setup('resync crash');
    const args = { dir, sizes: SIZES, chunk: CHUNK, baseSeq };
    let lastCursor = -1;
    for (let k = 0; k < KILLS; k++) {
      const lines = await runDriver(args, r.range(1, 6), r.int(15));
      expect(lines).toContain('ready');
      const store = (await openReplica(dir, SIZES)).store;
      shadow.forEach((want, i) => {
        expect(store.read(i, 0, want.length, p.id).equals(want), `kill ${k}: disk ${i} at P`).toBe(
          true,
        );
      });
      expect(store.latest()?.id).toBe(p.id);
      const rec = store.resyncState();
      if (lines.includes('done')) expect(rec?.state).toBe('finished');
      else {
        expect(rec?.state).toBe('running');
        const at = rec!.cursor.disk * SIZES[0]! + rec!.cursor.offset;
        expect(at).toBeGreaterThanOrEqual(lastCursor); // resumed, never restarted
        lastCursor = at;
      }
      await store.close();
    }
    const lines = await runDriver(args, undefined, 0);
    expect(lines).toContain('done');
    const final = await openReplica(dir, SIZES);
    expect(final.store.resyncState()?.state).toBe('finished');
    expect(final.store.lastApplied).toBe(baseSeq);
    const q = { id: 'q', time: 1, type: 'crash-consistent' as const, segment: baseSeq + 1 };
    await final.store.apply({ seq: baseSeq + 1, point: q, extents: [] });
    expect(final.store.points().map((x) => x.id)).toEqual([p.id, 'q']);
    SIZES.forEach((size, i) => {
      const source = fileBytes(join(dir, `src${i}.img`));
      expect(fileBytes(final.paths[i]!).equals(source), `disk ${i} exact`).toBe(true);
      expect(final.store.read(i, 0, size, 'q').equals(source)).toBe(true);
      expect(final.store.read(i, 0, size, p.id).equals(shadow[i]!)).toBe(true);
    });
    await final.store.close();
  }, 120_000);

  it('a failover killed mid-revert, mid-resync, still lands exactly on the last good point', async () => {
    const { r, dir, p, shadow, baseSeq } = await setup('resync revert crash');
    const args = { dir, sizes: SIZES, chunk: CHUNK, baseSeq };
    await runDriver(args, r.range(3, 8), r.int(10)); // a resync, cut short
    for (let k = 0; k < 3; k++) {
      const lines = await runDriver({ ...args, revertTo: p.id }, undefined, 0, r.int(40));
      const rep = await openReplica(dir, SIZES);
      shadow.forEach((want, i) => {
        expect(rep.store.read(i, 0, want.length, p.id).equals(want), `kill ${k}: disk ${i}`).toBe(
          true,
        );
      });
      if (lines.includes('reverted') || rep.store.resyncState() === undefined) {
        shadow.forEach((want, i) => expect(fileBytes(rep.paths[i]!).equals(want)).toBe(true));
      }
      await rep.store.close();
    }
    const rep = await openReplica(dir, SIZES);
    await rep.store.revertTo(p.id);
    expect(rep.store.resyncState()).toBeUndefined();
    shadow.forEach((want, i) => expect(fileBytes(rep.paths[i]!).equals(want)).toBe(true));
    await rep.store.close();
  }, 120_000);
});
