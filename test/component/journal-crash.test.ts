/**
 * The journal after kill -9 at random moments: a driver process performs a seeded stream of
 * writes, trims, zeroes, flushes and cuts over two small disks and is killed with SIGKILL; the
 * journal is then reopened here (recovery runs) and checked against the same stream:
 * - the valid journal is exactly a prefix of the stream (SEAL where a cut was), and that
 *   prefix holds every operation up to the last flush the driver reported complete;
 * - each disk equals that prefix replayed onto zeros, so nothing acknowledged is lost and no
 *   byte that was not written changed.
 * Seeds: SEED=<n> replays a run (round r uses SEED + r).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log/log.ts';
import { FakeClock } from '../../common/time/clock.ts';
import { listSegments } from '../../agent/host/journal/journal-dir.ts';
import { RecordType } from '../../agent/host/journal/segment-format.ts';
import { readSegment, type SegmentRecord } from '../../agent/host/journal/segment-reader.ts';
import { openVmJournal } from '../../agent/host/journal/vm-journal.ts';
import { RawDisk, createSparseImage } from '../../agent/host/vm/raw-disk.ts';
import {
  CRASH_DISK_SIZES,
  applyToModel,
  journalTestOps,
  type JournalTestOp,
} from '../helpers/journal-ops.ts';
import { seededRandom, testSeed } from '../helpers/seeded-random.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const OPS = 800;
const ROUNDS = 24;
const work = mkdtempSync(join(tmpdir(), 'journal-crash-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface DriverRun {
  lines: string[];
}

/** Runs the driver and SIGKILLs it after `killAfterLines` lines plus a random short delay. */
function runDriver(
  dir: string,
  seed: number,
  opts: { killAfterLines: number; delayMs: number; cap?: number },
) {
  return new Promise<DriverRun>((done, fail) => {
    const args = [
      'bin/run-ts.mjs',
      'test/helpers/journal-crash-driver.ts',
      dir,
      String(seed),
      String(OPS),
    ];
    if (opts.cap !== undefined) args.push(String(opts.cap));
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let pending = '';
    let stderr = '';
    let killing = false;
    const kill = () => {
      if (killing) return;
      killing = true;
      setTimeout(() => child.kill('SIGKILL'), opts.delayMs);
    };
    child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      lines.push(...parts);
      if (lines.length > opts.killAfterLines || lines.at(-1)?.startsWith('done')) kill();
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') done({ lines });
      else fail(new Error(`driver exited ${code}: ${stderr}`));
    });
  });
}

function makeDisks(dir: string): void {
  mkdirSync(dir, { recursive: true });
  CRASH_DISK_SIZES.forEach((size, i) => createSparseImage(join(dir, `d${i}.img`), size));
}

async function reopen(dir: string, capBytes = 2 ** 40) {
  const disks = CRASH_DISK_SIZES.map((_, i) => RawDisk.open(join(dir, `d${i}.img`)));
  return openVmJournal({
    dir: join(dir, 'journal'),
    vmId: 'crash-vm',
    disks,
    capBytes,
    clock: new FakeClock(),
    log: silentLogger,
  });
}

/** The records of every segment left after recovery, in journal order. */
function journalRecords(dir: string): SegmentRecord[] {
  return listSegments(join(dir, 'journal')).flatMap((f) => {
    const { summary, records } = readSegment(f.path);
    expect(summary.stop, `segment ${f.seq} after recovery`).toBe('end');
    return records;
  });
}

function sameOp(r: SegmentRecord, op: JournalTestOp): boolean {
  if (op.kind === 'cut') return r.type === RecordType.seal;
  if (op.kind === 'flush') return false;
  if (r.disk !== op.disk || r.offset !== op.offset) return false;
  if (op.kind === 'write')
    return r.type === RecordType.write && r.data !== null && r.data.equals(op.data);
  return (
    r.type === (op.kind === 'trim' ? RecordType.trim : RecordType.zero) && r.length === op.length
  );
}

describe('journal crash recovery', () => {
  it(`loses no flushed write and matches its journal after kill -9 (${ROUNDS} rounds)`, async () => {
    const seed = testSeed('journal crash');
    for (let round = 0; round < ROUNDS; round++) {
      const roundSeed = seed + round;
      const rnd = seededRandom(roundSeed ^ 0x5eed);
      const dir = join(work, `r${round}`);
      makeDisks(dir);
      const { lines } = await runDriver(dir, roundSeed, {
        killAfterLines: rnd.int(70),
        delayMs: rnd.int(20),
      });
      const ops = [...journalTestOps(roundSeed, OPS, CRASH_DISK_SIZES)];
      const lastFlushed = Math.max(
        -1,
        ...lines.filter((l) => l.startsWith('flushed ')).map((l) => Number(l.split(' ')[1])),
      );

      const journal = await reopen(dir);
      const records = journalRecords(dir);
      const stream = ops.filter((op) => op.kind !== 'flush');
      const mustHave = ops.slice(0, lastFlushed + 1).filter((op) => op.kind !== 'flush').length;
      const label = `SEED=${seed} round ${round} (seed ${roundSeed}): ${records.length} records, last flush ${lastFlushed}`;
      expect(records.length, label).toBeGreaterThanOrEqual(mustHave);
      expect(records.length, label).toBeLessThanOrEqual(stream.length);
      const firstMismatch = records.findIndex((r, k) => !sameOp(r, stream[k]!));
      expect(firstMismatch, label).toBe(-1);

      const model = CRASH_DISK_SIZES.map((s) => Buffer.alloc(s));
      for (const op of stream.slice(0, records.length)) applyToModel(model, op);
      const same = model.map((m, i) => m.equals(readFileSync(join(dir, `d${i}.img`))));
      expect(same, label).toEqual([true, true]);
      await journal.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it('over its cap tracks exactly the touched blocks, across kill -9 and reopen', async () => {
    const seed = testSeed('journal cap crash');
    const dir = join(work, 'cap');
    makeDisks(dir);
    const cap = 2 << 20;
    const count = 300;
    const { lines } = await runDriver(dir, seed, { killAfterLines: Infinity, delayMs: 0, cap });
    expect(lines.at(-1)).toBe('done resync-required');
    void count;
    const ops = [...journalTestOps(seed, OPS, CRASH_DISK_SIZES)];
    const block = 64 * 1024;
    const touched = CRASH_DISK_SIZES.map((s) =>
      new Array<boolean>(Math.ceil(s / block)).fill(false),
    );
    const model = CRASH_DISK_SIZES.map((s) => Buffer.alloc(s));
    for (const op of ops) {
      applyToModel(model, op);
      if (op.kind === 'flush' || op.kind === 'cut') continue;
      const length = op.kind === 'write' ? op.data.length : op.length;
      for (let b = Math.floor(op.offset / block); b * block < op.offset + length; b++)
        touched[op.disk]![b] = true;
    }
    const expected = new Map<number, Array<[number, number]>>();
    touched.forEach((bits, disk) => {
      const ranges: Array<[number, number]> = [];
      bits.forEach((set, b) => {
        if (!set) return;
        const last = ranges.at(-1);
        if (last && last[0] + last[1] === b * block) last[1] += block;
        else ranges.push([b * block, block]);
      });
      if (ranges.length > 0) expected.set(disk, ranges);
    });

    const journal = await reopen(dir, cap);
    expect(journal.state).toBe('resync-required');
    expect(journal.dirtyRanges()).toEqual(expected);
    expect(journal.unshippedBytes()).toBe(0);
    const same = model.map((m, i) => m.equals(readFileSync(join(dir, `d${i}.img`))));
    expect(same).toEqual([true, true]);
    expect(listSegments(join(dir, 'journal'))).toEqual([]);
    await journal.close();
  }, 120_000);
});
