import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../test/helpers/seeded-random.ts';
import { FirstWriteMap } from './resync-map.ts';

describe('FirstWriteMap', () => {
  it('keeps the first record of every byte', () => {
    const m = new FirstWriteMap();
    m.add(0, 100, 100, 1000); // [100, 200) at 1000
    m.add(0, 50, 200, 5000); // [50, 250): only [50,100) and [200,250) are new
    expect(m.touching(0, 0, 1000).map((t) => [t.offset, t.length])).toEqual([
      [50, 50],
      [100, 100],
      [200, 50],
    ]);
    expect(m.piece(0, 0)?.at).toBe(5000);
    expect(m.piece(0, 2)?.at).toBe(5150);
    expect(m.coveredBytes()).toBe(200);
  });

  it('agrees with a byte model on random records', () => {
    const seed = Number(process.env['SEED'] ?? Date.now() % 1e9);
    console.log(`FirstWriteMap random: SEED=${seed}`);
    const r = seededRandom(seed);
    const m = new FirstWriteMap();
    const model = new Map<number, number>(); // byte → log position of its first record
    let at = 0;
    for (let i = 0; i < 200; i++) {
      const off = r.int(2000);
      const len = r.range(1, 100);
      m.add(0, off, len, at);
      for (let b = off; b < off + len; b++) if (!model.has(b)) model.set(b, at + b - off);
      at += len;
    }
    const got = new Map<number, number>();
    for (const [, p] of m.all()) for (let b = 0; b < p.length; b++) got.set(p.offset + b, p.at + b);
    expect(got).toEqual(model);
    const pieces = m.touching(0, 0, 3000);
    for (let i = 1; i < pieces.length; i++) {
      expect(pieces[i]!.offset).toBeGreaterThanOrEqual(
        pieces[i - 1]!.offset + pieces[i - 1]!.length,
      );
    }
  });
});
