import { describe, expect, it } from 'vitest';
import { seededRandom, testSeed } from '../../../test/helpers/seeded-random.ts';
import { OverlayMap, type PieceSource } from './overlay-map-pure.ts';

/** What one byte reads as: its segment and file position, 'z' for zeros, '-' for the raw disk. */
function byteView(src: PieceSource | null, offsetInSpan: number): string {
  if (!src) return '-';
  return src.kind === 'zero' ? `z${src.seg}` : `${src.seg}@${src.pos + offsetInSpan}`;
}

describe('OverlayMap', () => {
  it('splits pieces at the edges of a newer range', () => {
    const m = new OverlayMap();
    m.set(0, 0, 100, { kind: 'data', seg: 1, pos: 1000 });
    m.set(0, 40, 20, { kind: 'zero', seg: 2 });
    expect(m.lookup(0, 30, 40)).toEqual([
      { start: 30, end: 40, src: { kind: 'data', seg: 1, pos: 1030 } },
      { start: 40, end: 60, src: { kind: 'zero', seg: 2 } },
      { start: 60, end: 70, src: { kind: 'data', seg: 1, pos: 1060 } },
    ]);
    expect(m.lookup(0, 90, 20)).toEqual([
      { start: 90, end: 100, src: { kind: 'data', seg: 1, pos: 1090 } },
      { start: 100, end: 110, src: null },
    ]);
    expect(m.lookup(1, 0, 5)).toEqual([{ start: 0, end: 5, src: null }]);
    m.removeSegment(1);
    expect(m.pieces()).toEqual([{ disk: 0, start: 40, end: 60, src: { kind: 'zero', seg: 2 } }]);
  });

  it('matches a per-byte model on random ranges', () => {
    const rnd = seededRandom(testSeed('overlay map'));
    const SIZE = 300;
    for (let round = 0; round < 200; round++) {
      const m = new OverlayMap();
      const model = Array.from({ length: 2 }, () => new Array<string>(SIZE).fill('-'));
      let pos = 0;
      for (let i = rnd.range(1, 40); i > 0; i--) {
        const disk = rnd.int(2);
        const start = rnd.int(SIZE);
        const length = rnd.range(1, SIZE - start);
        const seg = rnd.range(1, 3);
        const src: PieceSource =
          rnd.int(4) === 0 ? { kind: 'zero', seg } : { kind: 'data', seg, pos };
        pos += length + 48;
        m.set(disk, start, length, src);
        for (let b = 0; b < length; b++) model[disk]![start + b] = byteView(src, b);
        if (rnd.int(10) === 0) {
          const gone = rnd.range(1, 3);
          m.removeSegment(gone);
          for (const d of model)
            d.forEach((v, b) => (/^z?(\d+)/.exec(v)?.[1] === String(gone) ? (d[b] = '-') : 0));
        }
      }
      for (let disk = 0; disk < 2; disk++) {
        const start = rnd.int(SIZE);
        const length = rnd.range(1, SIZE - start);
        const spans = m.lookup(disk, start, length);
        const seen: string[] = [];
        let at = start;
        for (const s of spans) {
          expect(s.start, `round ${round}: spans contiguous`).toBe(at);
          for (let b = s.start; b < s.end; b++) seen.push(byteView(s.src, b - s.start));
          at = s.end;
        }
        expect(at).toBe(start + length);
        expect(seen, `round ${round}`).toEqual(model[disk]!.slice(start, start + length));
      }
      const all = m.pieces();
      for (let k = 1; k < all.length; k++) {
        const a = all[k - 1]!;
        const b = all[k]!;
        expect(a.disk < b.disk || a.end <= b.start, `round ${round}: pieces disjoint, sorted`).toBe(
          true,
        );
      }
    }
  });
});
