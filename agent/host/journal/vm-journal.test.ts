import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isSecondsiteError } from '../../../common/errors/errors.ts';
import { silentLogger } from '../../../common/log/log.ts';
import { FakeClock } from '../../../common/time/clock.ts';
import { RawDisk, createSparseImage } from '../vm/raw-disk.ts';
import { loadShippableSegment, readCoalescedSegment } from './segment-coalesce.ts';
import { readSegment } from './segment-reader.ts';
import { SegmentWriter } from './segment-writer.ts';
import { RecordType } from './segment-format.ts';
import { openVmJournal, type OpenVmJournalOptions } from './vm-journal.ts';

const MiB = 1 << 20;
let root: string;
let jdir: string;
let clock: FakeClock;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'vmj-'));
  jdir = join(root, 'journal');
  clock = new FakeClock();
  createSparseImage(join(root, 'd0.img'), 4 * MiB);
  createSparseImage(join(root, 'd1.img'), 2 * MiB);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function open(extra: Partial<OpenVmJournalOptions> = {}) {
  const disks = [RawDisk.open(join(root, 'd0.img')), RawDisk.open(join(root, 'd1.img'))];
  return openVmJournal({ dir: jdir, vmId: 'vm-1', disks, clock, log: silentLogger, ...extra });
}
const fill = (n: number, v: number) => Buffer.alloc(n, v);
const diskBytes = (i: number) => readFileSync(join(root, `d${i}.img`));
const files = () => readdirSync(jdir).sort();

describe('VmJournal', () => {
  it('offers a cut segment for shipping once its SEAL is durable, before the seal finishes', async () => {
    const seen: Array<{ seq: number; openPath?: string; onDisk: boolean }> = [];
    let shippedEarly: Promise<void> | undefined;
    let loaded: Awaited<ReturnType<typeof loadShippableSegment>> | undefined;
    let loading: Promise<void> | undefined;
    const j = await open({
      onShippable: () => {
        const s = j.shippableSegments().at(-1)!;
        seen.push({ seq: s.seq, openPath: s.openPath, onDisk: existsSync(s.openPath ?? '') });
        expect(j.sealedSegments()).toEqual([]); // not sealed yet: the raw disks lag
        loading = loadShippableSegment(s).then((seg) => void (loaded = seg));
        // The peer acknowledges it before the seal finished (called here, inside the seal):
        // the finished seal must delete it rather than list it as sealed.
        if (s.seq === 1) shippedEarly = j.markShipped(1);
      },
    });
    await j.disk(0).write(0, fill(4096, 7), false);
    const p = await j.cut({ type: 'crash-consistent' });
    await loading;
    await shippedEarly;
    expect(seen).toEqual([{ seq: 1, openPath: join(jdir, '000000000001.active'), onDisk: true }]);
    expect(loaded?.point).toEqual(p);
    expect(loaded?.extents).toEqual([{ disk: 0, offset: 0, length: 4096, data: fill(4096, 7) }]);
    await j.cut({ type: 'crash-consistent' }); // a cycle later, segment 1 is surely gone
    expect(j.sealedSegments().map((s) => s.seq)).toEqual([2]);
    expect(files()).toEqual(['000000000002.seg', '000000000003.active', 'state.json']);
    expect(diskBytes(0).subarray(0, 4096).equals(fill(4096, 7))).toBe(true);
    // After the rename a shippable entry still loads (from the sealed name).
    const stale = { ...j.sealedSegments()[0]!, openPath: join(jdir, '000000000002.active') };
    expect((await loadShippableSegment(stale)).point.segment).toBe(2);
    await j.close();
  });

  it('journals each operation and applies it to the disk', async () => {
    const j = await open();
    await j.disk(0).write(4096, fill(8192, 0xab), false);
    await j.disk(1).writeZeroes(0, 512, true);
    await j.disk(0).trim(6000, 100, false);
    const view = await j.disk(0).read(0, 16384);
    expect(view.subarray(4096, 6000).equals(fill(1904, 0xab))).toBe(true);
    expect(view.subarray(6000, 6100).equals(fill(100, 0))).toBe(true);
    expect(view.subarray(6100, 12288).equals(fill(6188, 0xab))).toBe(true);
    expect(view.subarray(12288).equals(fill(4096, 0))).toBe(true);
    const { records } = readSegment(join(jdir, '000000000001.active'));
    expect(records.map((r) => [r.type, r.disk, r.offset, r.length])).toEqual([
      [RecordType.write, 0, 4096, 8192],
      [RecordType.zero, 1, 0, 512],
      [RecordType.trim, 0, 6000, 100],
    ]);
    await j.close();
    expect(diskBytes(0).subarray(0, 16384).equals(view)).toBe(true);
  });

  it('cuts seal a segment with its point; shipping deletes it', async () => {
    const j = await open();
    await j.disk(0).write(0, fill(4096, 1), false);
    clock.advance(5000);
    const p = await j.cut({ type: 'app-consistent', freezeFailed: 'guest timeout' });
    expect(p).toMatchObject({
      segment: 1,
      type: 'app-consistent',
      time: clock.now(),
      freezeFailed: 'guest timeout',
    });
    await j.disk(1).write(0, fill(10, 2), false);
    const p2 = await j.cut({ type: 'crash-consistent' });
    expect(p2.segment).toBe(2);
    expect(j.sealedSegments().map((s) => [s.seq, s.point.id])).toEqual([
      [1, p.id],
      [2, p2.id],
    ]);
    expect(files()).toEqual([
      '000000000001.seg',
      '000000000002.seg',
      '000000000003.active',
      'state.json',
    ]);
    const before = j.unshippedBytes();
    const first = j.sealedSegments()[0]!.bytes;
    await j.markShipped(1);
    expect(j.unshippedBytes()).toBe(before - first);
    expect(j.sealedSegments().map((s) => s.seq)).toEqual([2]);
    const shipped = readCoalescedSegment(j.sealedSegments()[0]!.path);
    expect(shipped.point).toEqual(p2);
    expect(shipped.extents).toEqual([{ disk: 1, offset: 0, length: 10, data: fill(10, 2) }]);
    await j.markShipped(1); // idempotent
    await j.close();
    const again = await open();
    expect(again.sealedSegments().map((s) => s.point)).toEqual([p2]);
    expect((await again.cut({ type: 'crash-consistent' })).segment).toBe(3);
    await again.close();
  });

  it('splits writes racing cuts cleanly, each record in exactly one segment', async () => {
    const j = await open();
    const issued: number[][] = [[]];
    const snapshots: Buffer[][] = [];
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; i < 50; i++) {
        await new Promise((r) => setImmediate(r));
        const tag = w * 1000 + i;
        // The write's synchronous part runs here, so it belongs to the segment open right now.
        const data = fill(512, 0);
        data.writeUInt16LE(tag, 0);
        const done = j.disk(w % 2).write((tag % 200) * 512, data, false);
        issued.at(-1)!.push(tag);
        await done;
      }
    });
    const cutter = (async () => {
      for (let c = 0; c < 10; c++) {
        await new Promise((r) => setImmediate(r));
        const cut = j.cut({ type: 'crash-consistent' });
        issued.push([]);
        // Nothing can run between cut() and these reads (their work is synchronous).
        const views = [j.disk(0).read(0, 4 * MiB), j.disk(1).read(0, 2 * MiB)];
        snapshots.push(await Promise.all(views));
        await cut;
      }
    })();
    await Promise.all([...writers, cutter]);
    await j.cut({ type: 'crash-consistent' });
    const segments = j.sealedSegments().map((s) =>
      readSegment(s.path)
        .records.filter((r) => r.type === RecordType.write)
        .map((r) => r.data!.readUInt16LE(0)),
    );
    expect(segments).toHaveLength(issued.length);
    expect(segments).toEqual(issued);
    const replayed = [Buffer.alloc(4 * MiB), Buffer.alloc(2 * MiB)];
    j.sealedSegments().forEach((s, k) => {
      for (const r of readSegment(s.path).records) r.data?.copy(replayed[r.disk]!, r.offset);
      const snap = snapshots[k];
      if (!snap) return;
      const same = replayed.map((b, i) => b.equals(snap[i]!));
      expect(same, `disks at cut ${k + 1}`).toEqual([true, true]);
    });
    await j.close();
  });

  it('finishes a cut interrupted between its seal and its rename', async () => {
    const j = await open();
    await j.disk(0).write(0, fill(100, 7), false);
    await j.close();
    // As if the process died right after cut()'s synchronous part: SEAL in 1, 2 created.
    const path1 = join(jdir, '000000000001.active');
    const len = readSegment(path1).summary.validLength;
    const w = SegmentWriter.reopen(path1, 1, len, 2);
    w.appendSeal({ id: 'p1', time: 42, type: 'crash-consistent' });
    w.close();
    const w2 = SegmentWriter.create(join(jdir, '000000000002.active'), {
      seq: 2,
      vmId: 'vm-1',
      created: 43,
    });
    w2.append(RecordType.write, 1, 0, 3, Buffer.from([9, 9, 9]));
    w2.close();
    writeFileSync(join(root, 'd1.img'), Buffer.alloc(2 * MiB)); // the disk lost that write
    const j2 = await open();
    expect(j2.sealedSegments().map((s) => [s.seq, s.point.id])).toEqual([[1, 'p1']]);
    expect([...diskBytes(1).subarray(0, 4)]).toEqual([9, 9, 9, 0]);
    await j2.disk(0).write(0, fill(1, 1), false);
    expect(readSegment(join(jdir, '000000000002.active')).records).toHaveLength(2);
    await j2.close();
  });

  it('cuts a torn tail and restarts a segment whose header is torn', async () => {
    const j = await open();
    await j.disk(0).write(0, fill(1000, 3), false);
    await j.close();
    const path = join(jdir, '000000000001.active');
    writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.from('garbage tail')]));
    const j2 = await open();
    expect(readSegment(path).summary).toMatchObject({ stop: 'end', records: 1 });
    await j2.cut({ type: 'crash-consistent' });
    await j2.close();
    writeFileSync(join(jdir, '000000000002.active'), Buffer.from('SSJS half a header'));
    const j3 = await open();
    await j3.disk(1).write(0, fill(1, 1), false);
    expect(readSegment(join(jdir, '000000000002.active')).summary).toMatchObject({
      records: 1,
      stop: 'end',
    });
    await j3.close();
  });

  it('over its cap goes to resync-required with a bitmap of every touched block', async () => {
    const j = await open({ capBytes: 300 * 1024 });
    await j.disk(0).write(0, fill(100 * 1024, 1), false); // blocks 0-1 of disk 0
    await j.cut({ type: 'crash-consistent' });
    await j.disk(1).write(3 * 65536 + 10, fill(10, 2), false); // block 3 of disk 1
    await j.disk(0).write(MiB, fill(200 * 1024, 3), false); // overflows: blocks 16-19
    expect(j.state).toBe('resync-required');
    expect(j.unshippedBytes()).toBe(0);
    expect(j.sealedSegments()).toEqual([]);
    await j.disk(1).trim(MiB, 1, false); // block 16 of disk 1
    await j.disk(0).write(0, fill(10, 4), false); // already dirty
    const expected = new Map([
      [0, [[0, 131072] as [number, number], [MiB, 262144] as [number, number]]],
      [1, [[196608, 65536] as [number, number], [MiB, 65536] as [number, number]]],
    ]);
    expect(j.dirtyRanges()).toEqual(expected);
    expect(files()).toEqual(['dirty.bitmap', 'state.json']);
    await expect(j.cut({ type: 'crash-consistent' })).rejects.toMatchObject({
      code: 'SS_RESYNC_REQUIRED',
    });
    expect(diskBytes(0)[MiB]).toBe(3);
    await j.close();
    const j2 = await open({ capBytes: 300 * 1024 });
    expect(j2.state).toBe('resync-required');
    expect(j2.dirtyRanges()).toEqual(expected);
    await j2.resetAfterResync();
    expect(j2.state).toBe('journaling');
    expect(j2.dirtyRanges()).toEqual(new Map());
    expect(existsSync(join(jdir, 'dirty.bitmap'))).toBe(false);
    await j2.disk(0).write(0, fill(10, 5), false);
    const p = await j2.cut({ type: 'crash-consistent' });
    expect(p.segment).toBeGreaterThan(2); // seqs are never reused
    await j2.close();
  });

  it('a reset hands back every dirty block, also one written while it waited for a seal', async () => {
    const j = await open({ capBytes: 256 * 1024 });
    await j.disk(0).write(0, fill(64 * 1024, 1), false);
    const cut = j.cut({ type: 'crash-consistent' });
    await j.disk(0).write(32 * 1024, fill(200 * 1024, 2), false); // overflows mid-seal
    await expect(cut).rejects.toMatchObject({ code: 'SS_RESYNC_REQUIRED' });
    const reset = j.resetAfterResync(); // waits for the failed seal to settle
    await j.disk(1).write(5 * 65536, fill(10, 3), false); // lands during that wait
    const ranges = await reset;
    expect(ranges.get(1)).toEqual([[5 * 65536, 65536]]);
    expect(ranges.get(0)?.[0]?.[0]).toBe(0);
    expect(j.state).toBe('journaling');
    await j.close();
  });

  it('an overflow while a cut is sealing fails that cut and keeps every byte', async () => {
    const j = await open({ capBytes: 256 * 1024 });
    await j.disk(0).write(0, fill(64 * 1024, 1), false);
    const cut = j.cut({ type: 'crash-consistent' });
    await j.disk(0).write(32 * 1024, fill(200 * 1024, 2), false); // overflows mid-seal
    await expect(cut).rejects.toMatchObject({ code: 'SS_RESYNC_REQUIRED' });
    expect(j.state).toBe('resync-required');
    expect(files()).toEqual(['dirty.bitmap', 'state.json']);
    const expected = Buffer.concat([fill(32 * 1024, 1), fill(200 * 1024, 2)]);
    expect((await j.disk(0).read(0, expected.length)).equals(expected)).toBe(true);
    expect(diskBytes(0).subarray(0, expected.length).equals(expected)).toBe(true);
    expect(j.dirtyRanges()).toEqual(new Map([[0, [[0, 256 * 1024]]]]));
    await j.close();
  });

  it('after a host crash with the journal open, marks every block dirty', async () => {
    const j = await open();
    await j.disk(0).write(0, fill(10, 1), false);
    await j.close();
    const statePath = join(jdir, 'state.json');
    const st = JSON.parse(readFileSync(statePath, 'utf8')) as Record<string, unknown>;
    writeFileSync(statePath, JSON.stringify({ ...st, openBootId: 'an-earlier-boot' }));
    const j2 = await open();
    expect(j2.state).toBe('resync-required');
    expect(j2.dirtyRanges()).toEqual(
      new Map([
        [0, [[0, 4 * MiB]]],
        [1, [[0, 2 * MiB]]],
      ]),
    );
    await j2.close();
  });

  it('rejects operations after close with a typed error', async () => {
    const j = await open();
    const d = j.disk(0);
    await j.close();
    const e: unknown = await d.write(0, fill(1, 1), false).catch((x: unknown) => x);
    expect(isSecondsiteError(e) && e.code).toBe('SS_CONFLICT');
  });
});
