import { describe, expect, it } from 'vitest';
import {
  FOOTER_BYTES,
  HEADER_BYTES,
  decodeHeader,
  decodeTable,
  encodeHeader,
  encodeTable,
  parseUndoFileName,
  undoFileBytes,
  undoFileName,
} from './undo-format.ts';
import { planUndoRuns, runsDataBytes, runsTouching } from './undo-runs.ts';

const ext = (disk: number, offset: number, length: number) => ({
  disk,
  offset,
  length,
  data: null,
});

describe('planUndoRuns', () => {
  it('merges adjacent extents of one disk into one run and lays data out in order', () => {
    const runs = planUndoRuns([ext(0, 0, 10), ext(0, 10, 5), ext(0, 20, 5), ext(1, 25, 5)], 64);
    expect(Array.from(runs.offset)).toEqual([0, 20, 25]);
    expect(Array.from(runs.length)).toEqual([15, 5, 5]);
    expect(Array.from(runs.disk)).toEqual([0, 0, 1]);
    expect(Array.from(runs.fileOffset)).toEqual([64, 79, 84]);
    expect(runsDataBytes(runs)).toBe(25);
  });

  it('never merges across disks, and cuts runs at the maximum', () => {
    const runs = planUndoRuns([ext(0, 0, 6), ext(0, 6, 6), ext(1, 12, 3)], 0, 4);
    expect(Array.from(runs.length)).toEqual([4, 4, 4, 3]);
    expect(Array.from(runs.offset)).toEqual([0, 4, 8, 12]);
  });
});

describe('runsTouching', () => {
  const runs = planUndoRuns([ext(0, 0, 10), ext(0, 20, 10), ext(1, 0, 100)], 0);
  it('finds the runs of one disk that intersect a range', () => {
    expect(runsTouching(runs, 0, 5, 25).map((r) => r.ref)).toEqual([0, 1]);
    expect(runsTouching(runs, 0, 10, 20)).toEqual([]);
    expect(runsTouching(runs, 0, 29, 1000).map((r) => r.ref)).toEqual([1]);
    expect(runsTouching(runs, 1, 50, 51).map((r) => r.ref)).toEqual([2]);
    expect(runsTouching(runs, 2, 0, 10)).toEqual([]);
  });
});

describe('undo file header and table', () => {
  it('round-trips and sizes the file', () => {
    const runs = planUndoRuns([ext(0, 4096, 100), ext(1, 0, 7)], HEADER_BYTES);
    runs.crc[0] = 0xdeadbeef;
    const head = Buffer.alloc(HEADER_BYTES);
    const header = { seq: 2 ** 40 + 3, runCount: 2, dataBytes: 107, diskCount: 2 };
    encodeHeader(header, head);
    expect(decodeHeader(head)).toEqual({ ...header, version: 2 });
    const table = encodeTable(runs);
    expect(table.length).toBe(2 * 32 + FOOTER_BYTES);
    const back = decodeTable(table, header);
    expect(typeof back).not.toBe('string');
    if (typeof back !== 'string') {
      expect(Array.from(back.fileOffset)).toEqual([64, 164]);
      expect(back.crc[0]).toBe(0xdeadbeef);
    }
    expect(undoFileBytes(header)).toBe(64 + 107 + 64 + 16);
  });

  it('names what is wrong with a damaged header or table', () => {
    const head = Buffer.alloc(HEADER_BYTES);
    const header = { seq: 1, runCount: 1, dataBytes: 5, diskCount: 1 };
    encodeHeader(header, head);
    head[20] = head[20]! ^ 1;
    expect(decodeHeader(head)).toBe('header checksum mismatch');
    const table = encodeTable(planUndoRuns([ext(0, 0, 5)], HEADER_BYTES));
    table[9] = table[9]! ^ 1;
    expect(decodeTable(table, header)).toBe('table checksum mismatch');
    expect(decodeTable(table.subarray(1), header)).toBe('table size mismatch');
  });

  it('reads data laid out in any order (version 2) and still reads version 1', () => {
    // Two runs whose data lie in the file in the opposite order (a live segment's staging).
    const runs = planUndoRuns([ext(0, 0, 10), ext(1, 0, 30)], HEADER_BYTES);
    runs.fileOffset[0] = HEADER_BYTES + 30;
    runs.fileOffset[1] = HEADER_BYTES;
    const header = { seq: 7, runCount: 2, dataBytes: 40, diskCount: 2 };
    const back = decodeTable(encodeTable(runs), { ...header, version: 2 });
    expect(typeof back === 'string' ? back : Array.from(back.fileOffset)).toEqual([94, 64]);
    // Version 1 ignores the stored offsets: data in run order.
    const v1 = decodeTable(encodeTable(runs), { ...header, version: 1 });
    expect(typeof v1 === 'string' ? v1 : Array.from(v1.fileOffset)).toEqual([64, 74]);
    // Offsets that overlap or leave a gap are refused.
    runs.fileOffset[0] = HEADER_BYTES + 20;
    expect(decodeTable(encodeTable(runs), { ...header, version: 2 })).toBe(
      'run data does not tile the data region',
    );
  });

  it('names files by seq', () => {
    expect(undoFileName(42)).toBe('000000000042.undo');
    expect(parseUndoFileName('000000000042.undo')).toBe(42);
    expect(parseUndoFileName('000000000042.undo.tmp')).toBeUndefined();
  });
});
