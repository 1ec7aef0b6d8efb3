import { mkdtempSync, rmSync, writeSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RecordType } from './segment-format.ts';
import { SegmentTail } from './segment-tail.ts';
import { SegmentWriter } from './segment-writer.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tail-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (n: number, fill: number) => Buffer.alloc(n, fill);

describe('SegmentTail (reading a segment while it is written)', () => {
  it('reads whole records up to what was written, then more, then the seal', () => {
    const path = join(dir, 'seg');
    const w = SegmentWriter.create(path, { seq: 4, vmId: 'vm', created: 1 });
    const tail = SegmentTail.open(path, 4);
    try {
      expect(tail.read(w.bytes, 1 << 20)).toEqual({ extents: [], bytes: 0 });
      w.append(RecordType.write, 0, 4096, 100, bytes(100, 1));
      w.append(RecordType.zero, 1, 0, 8192, null);
      const first = tail.read(w.bytes, 1 << 20);
      expect(first.extents).toEqual([
        { disk: 0, offset: 4096, length: 100, data: bytes(100, 1) },
        { disk: 1, offset: 0, length: 8192, data: null },
      ]);
      // A window that ends inside a record stops before it; a record larger than the window
      // is read whole.
      w.append(RecordType.write, 0, 0, 3000, bytes(3000, 2));
      w.append(RecordType.trim, 0, 8192, 512, null);
      const small = tail.read(w.bytes, 100);
      expect(small.extents).toEqual([{ disk: 0, offset: 0, length: 3000, data: bytes(3000, 2) }]);
      expect(tail.read(w.bytes, 100).extents).toEqual([
        { disk: 0, offset: 8192, length: 512, data: null },
      ]);
      w.appendSeal({ id: 'p-4', time: 9, type: 'crash-consistent' });
      const end = tail.read(w.bytes, 1 << 20);
      expect(end.extents).toEqual([]);
      expect(end.seal).toMatchObject({ id: 'p-4', time: 9, type: 'crash-consistent' });
      expect(tail.read(w.bytes + 100, 1 << 20)).toEqual({ extents: [], bytes: 0 });
    } finally {
      tail.close();
      w.close();
    }
  });

  it('refuses another segment’s file and a damaged record', () => {
    const path = join(dir, 'seg');
    const w = SegmentWriter.create(path, { seq: 2, vmId: 'vm', created: 1 });
    w.append(RecordType.write, 0, 0, 64, bytes(64, 3));
    const at = w.bytes;
    w.append(RecordType.write, 0, 64, 64, bytes(64, 4));
    w.close();
    expect(() => SegmentTail.open(path, 3)).toThrow(/not segment 3/);
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from([0xff]), 0, 1, at + 60); // inside the second record's payload
    closeSync(fd);
    const tail = SegmentTail.open(path, 2);
    try {
      expect(() => tail.read(at + 48 + 64, 1 << 20)).toThrow(
        expect.objectContaining({ code: 'SS_IO' }),
      );
    } finally {
      tail.close();
    }
  });
});
