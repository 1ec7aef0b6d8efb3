import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  RECORD_HEADER_BYTES,
  RecordType,
  SEAL_RECORD_BYTES,
  SEGMENT_HEADER_BYTES,
  decodeSealPayload,
  encodeSealPayload,
} from './segment-format.ts';
import {
  loadCoalescedSegment,
  loadShippableSegment,
  readCoalescedSegment,
} from './segment-coalesce.ts';
import {
  LoadBuffer,
  SegmentMemoryPool,
  loadSegmentFile,
  readSeal,
  readSegment,
  scanSegment,
  scanSegmentBuffer,
  type SegmentRecord,
} from './segment-reader.ts';
import { SegmentWriter } from './segment-writer.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'seg-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const seal = {
  id: 'rp-1',
  time: 1_700_000_000_123,
  type: 'app-consistent' as const,
  freezeFailed: 'guest slow',
};

/** A segment with a write, a trim, a zero and a final write; returns its path and record ends. */
function sample(withSeal = false): { path: string; ends: number[] } {
  const path = join(dir, 'x.active');
  const w = SegmentWriter.create(path, { seq: 7, vmId: 'vm-42', created: 1234 });
  const ends: number[] = [];
  w.append(RecordType.write, 0, 4096, 5, Buffer.from('hello'), 1);
  ends.push(w.bytes);
  w.append(RecordType.trim, 1, 0, 1 << 20, null);
  ends.push(w.bytes);
  w.append(RecordType.zero, 0, 8192, 512, null);
  ends.push(w.bytes);
  w.append(RecordType.write, 1, 10, 3, Buffer.from([1, 2, 3]));
  ends.push(w.bytes);
  if (withSeal) {
    w.appendSeal(seal);
    ends.push(w.bytes);
  }
  w.close();
  return { path, ends };
}

describe('segment format', () => {
  it('round-trips header and records', () => {
    const { path, ends } = sample(true);
    const { summary, records } = readSegment(path);
    expect(summary.header).toEqual({ version: 1, seq: 7, vmId: 'vm-42', created: 1234 });
    expect(summary.stop).toBe('end');
    expect(summary.validLength).toBe(ends.at(-1));
    expect(records.map((r) => [r.type, r.recordSeq, r.disk, r.offset, r.length, r.flags])).toEqual([
      [RecordType.write, 1, 0, 4096, 5, 1],
      [RecordType.trim, 2, 1, 0, 1 << 20, 0],
      [RecordType.zero, 3, 0, 8192, 512, 0],
      [RecordType.write, 4, 1, 10, 3, 0],
      [RecordType.seal, 5, 0, 0, 0, 0],
    ]);
    expect(records[0]?.data?.toString()).toBe('hello');
    expect(records[1]?.data).toBeNull();
    expect(records[4]?.seal).toEqual(seal);
    expect(records[0]?.fileOffset).toBe(SEGMENT_HEADER_BYTES);
  });

  it('reads a sealed segment point from its tail', () => {
    const { path } = sample(true);
    expect(readSeal(path)).toEqual({
      header: { version: 1, seq: 7, vmId: 'vm-42', created: 1234 },
      seal,
    });
    const unsealed = sample(false).path;
    expect(readSeal(unsealed)).toBeUndefined();
  });

  it('header-only scans skip payloads', () => {
    const { records } = readSegment(sample().path, { payloads: false });
    expect(records.map((r) => r.data)).toEqual([null, null, null, null]);
    expect(records[3]?.length).toBe(3);
  });

  it('cuts a torn last record at every byte', () => {
    const { path, ends } = sample(true);
    const original = readFileSync(path);
    const lastStart = ends.at(-2)!;
    for (let at = lastStart; at < original.length; at++) {
      writeFileSync(path, original);
      truncateSync(path, at);
      const { summary, records } = readSegment(path);
      expect(summary.validLength, `cut at ${at}`).toBe(lastStart);
      expect(summary.stop).toBe(at === lastStart ? 'end' : 'torn');
      expect(records).toHaveLength(4);
    }
  });

  it('stops before a record with any byte flipped', () => {
    const { path, ends } = sample();
    const original = readFileSync(path);
    const lastStart = ends.at(-2)!;
    for (let at = lastStart; at < original.length; at++) {
      const bad = Buffer.from(original);
      bad[at] = bad[at]! ^ 0x40;
      writeFileSync(path, bad);
      const { summary, records } = readSegment(path);
      expect(summary.validLength, `flip at ${at}`).toBe(lastStart);
      expect(records, `flip at ${at}`).toHaveLength(3);
      expect(['invalid', 'bad-crc', 'torn']).toContain(summary.stop);
    }
  });

  it('rejects a record out of sequence and a damaged segment header', () => {
    const { path, ends } = sample();
    const original = readFileSync(path);
    // Duplicate record 1 where record 2 should be: valid CRC, wrong record seq.
    const first = original.subarray(SEGMENT_HEADER_BYTES, ends[0]);
    writeFileSync(path, Buffer.concat([original.subarray(0, ends[0]), first]));
    expect(readSegment(path).summary).toMatchObject({
      validLength: ends[0],
      stop: 'invalid',
      records: 1,
    });
    const bad = Buffer.from(original);
    bad[30] = bad[30]! ^ 1;
    writeFileSync(path, bad);
    expect(readSegment(path).summary).toMatchObject({ validLength: 0, stop: 'bad-header' });
  });

  it('fixes the seal record size and truncates long reasons at a character boundary', () => {
    expect(SEAL_RECORD_BYTES).toBe(512);
    expect(RECORD_HEADER_BYTES).toBe(48);
    const long = 'é'.repeat(300); // 600 bytes of UTF-8
    const back = decodeSealPayload(encodeSealPayload({ ...seal, freezeFailed: long }));
    expect(back?.freezeFailed).toBe('é'.repeat(192));
    expect(
      decodeSealPayload(encodeSealPayload({ id: 'a', time: 1, type: 'crash-consistent' })),
    ).toEqual({
      id: 'a',
      time: 1,
      type: 'crash-consistent',
    });
  });
});

describe('scanning a segment loaded into memory', () => {
  it('finds the same records and stop as scanning the file, for whole and torn files', async () => {
    const { path, ends } = sample(true);
    for (const cut of [ends.at(-1)!, ends[1]! + 7, SEGMENT_HEADER_BYTES - 1]) {
      truncateSync(path, cut);
      const fromFile: SegmentRecord[] = [];
      const fromBuffer: SegmentRecord[] = [];
      const a = scanSegment(path, (r) => fromFile.push(r));
      const b = scanSegmentBuffer(await loadSegmentFile(path), (r) => fromBuffer.push(r));
      expect(b).toEqual(a);
      expect(fromBuffer).toEqual(fromFile);
    }
  });

  it('refuses a flipped payload byte like the file scan does', async () => {
    const { path, ends } = sample(true);
    const bytes = readFileSync(path);
    bytes[ends[0]! - 1]! ^= 0xff; // last payload byte of the first write
    writeFileSync(path, bytes);
    const b = scanSegmentBuffer(await loadSegmentFile(path), () => undefined);
    expect(b.stop).toBe('bad-crc');
    expect(b).toEqual(scanSegment(path, () => undefined));
  });

  it('coalesces a sealed segment to the same extents and point either way', async () => {
    const { path } = sample(true);
    expect(await loadCoalescedSegment(path)).toEqual(readCoalescedSegment(path));
  });

  it('loads through a reused buffer: same bytes each time, its memory kept only up to the cap', async () => {
    const { path } = sample(true);
    const whole = readFileSync(path);
    const reuse = new LoadBuffer(whole.length);
    const first = await loadSegmentFile(path, reuse);
    expect(first.equals(whole)).toBe(true);
    first.fill(0xee); // the caller is done with it: the next load must overwrite every byte
    const second = await loadSegmentFile(path, reuse);
    expect(second.equals(whole)).toBe(true);
    const same = (x: Buffer, y: Buffer) => x.buffer === y.buffer && x.byteOffset === y.byteOffset;
    expect(same(second, first)).toBe(true);
    expect(await loadCoalescedSegment(path, {}, reuse)).toEqual(readCoalescedSegment(path));
    const small = new LoadBuffer(whole.length - 1);
    const a = await loadSegmentFile(path, small);
    const b = await loadSegmentFile(path, small);
    expect(a.equals(whole) && b.equals(whole)).toBe(true);
    expect(same(b, a)).toBe(false);
  });

  it('ships from kept memory: the same extents, laid out back to back, and slots bounded', async () => {
    const { path } = sample(true);
    const plain = readCoalescedSegment(path);
    const pool = new SegmentMemoryPool(1, 1 << 20);
    const slot = pool.borrow()!;
    expect(pool.borrow()).toBeUndefined(); // one slot: a second sender gets fresh memory
    const kept = await loadShippableSegment({ seq: 1, path, bytes: 0, point: plain.point }, slot);
    expect(kept).toEqual(plain);
    const data = kept.extents.flatMap((e) => (e.data ? [e.data] : []));
    for (let i = 1; i < data.length; i++) {
      expect(data[i]!.buffer).toBe(data[0]!.buffer);
      expect(data[i]!.byteOffset).toBe(data[i - 1]!.byteOffset + data[i - 1]!.length);
    }
    pool.giveBack(slot, true);
    expect(pool.borrow()).toBe(slot);
    pool.giveBack(slot, false); // a failed stream: the slot is replaced, never reused
    const next = pool.borrow()!;
    expect(next).not.toBe(slot);
    expect(next.file.maxBytes).toBe(1 << 20);
  });
});
