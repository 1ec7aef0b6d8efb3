import { describe, expect, it } from 'vitest';
import { seededRandom, testSeed } from '../../../test/helpers/seeded-random.ts';
import { resolveRead, type ReadPiece, type SegmentTouch, type TouchedRange } from './resolve.ts';

/** Per byte: 'current' or 'seq:ref' — the brute-force statement of the rule. */
function expand(pieces: readonly ReadPiece[], start: number, length: number): string[] {
  const out = new Array<string>(length).fill('?');
  for (const p of pieces) {
    for (let b = p.offset; b < p.offset + p.length; b++) {
      expect(out[b - start]).toBe('?'); // no overlap
      out[b - start] = p.source.kind === 'current' ? 'current' : `${p.source.seq}:${p.source.ref}`;
    }
  }
  return out;
}

function oracle(segments: readonly SegmentTouch[], start: number, length: number): string[] {
  const out: string[] = [];
  for (let b = start; b < start + length; b++) {
    let source = 'current';
    for (const s of segments) {
      const hit = s.touched.find((t) => b >= t.offset && b < t.offset + t.length);
      if (hit) {
        source = `${s.seq}:${hit.ref}`;
        break;
      }
    }
    out.push(source);
  }
  return out;
}

describe('resolveRead', () => {
  it('reads the current bytes when no later segment touched the range', () => {
    expect(resolveRead({ offset: 10, length: 5 }, [])).toEqual([
      { offset: 10, length: 5, source: { kind: 'current' } },
    ]);
  });

  it('takes each byte from the first later segment that touched it', () => {
    const later: SegmentTouch[] = [
      { seq: 5, touched: [{ offset: 4, length: 4, ref: 0 }] },
      { seq: 6, touched: [{ offset: 0, length: 6, ref: 3 }] },
    ];
    expect(resolveRead({ offset: 0, length: 10 }, later)).toEqual([
      { offset: 0, length: 4, source: { kind: 'undo', seq: 6, ref: 3 } },
      { offset: 4, length: 4, source: { kind: 'undo', seq: 5, ref: 0 } },
      { offset: 8, length: 2, source: { kind: 'current' } },
    ]);
  });

  it('stops consuming segments once every byte has a source', () => {
    let consumed = 0;
    function* later(): Generator<SegmentTouch> {
      for (let seq = 1; seq < 100; seq++) {
        consumed++;
        yield { seq, touched: [{ offset: 0, length: 100, ref: 0 }] };
      }
    }
    resolveRead({ offset: 10, length: 10 }, later());
    expect(consumed).toBe(1);
  });

  it('agrees with the byte-by-byte rule on random layouts', () => {
    const rnd = seededRandom(testSeed('resolveRead random'));
    for (let round = 0; round < 300; round++) {
      const segments: SegmentTouch[] = [];
      for (let seq = 1; seq <= rnd.range(0, 6); seq++) {
        const touched: TouchedRange[] = [];
        let pos = rnd.int(20);
        for (let ref = 0; ref < rnd.int(6); ref++) {
          pos += rnd.int(3) === 0 ? 0 : rnd.int(15);
          const length = rnd.range(1, 12);
          touched.push({ offset: pos, length, ref });
          pos += length;
        }
        segments.push({ seq: seq * 2, touched });
      }
      const start = rnd.int(60);
      const length = rnd.int(60);
      const pieces = resolveRead({ offset: start, length }, segments);
      expect(expand(pieces, start, length)).toEqual(oracle(segments, start, length));
      const sorted = pieces.every((p, i) => i === 0 || pieces[i - 1]!.offset < p.offset);
      expect(sorted).toBe(true);
    }
  });
});
