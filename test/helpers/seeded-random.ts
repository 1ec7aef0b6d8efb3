/**
 * A small seeded PRNG (mulberry32) for randomised tests: same seed, same sequence. Tests print
 * the seed they use and take one from the SEED environment variable to replay a failure.
 */
export interface Random {
  readonly seed: number;
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [0, n). */
  int(n: number): number;
  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number;
  pick<T>(xs: readonly T[]): T;
  /** Fills a buffer with pseudo-random bytes. */
  fill(b: Buffer): Buffer;
}

export function seededRandom(seed: number): Random {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    seed,
    next,
    int,
    range: (lo, hi) => lo + int(hi - lo + 1),
    pick: (xs) => xs[int(xs.length)]!,
    fill: (b) => {
      for (let i = 0; i < b.length; i += 4) {
        const v = (next() * 4294967296) >>> 0;
        for (let k = 0; k < 4 && i + k < b.length; k++) b[i + k] = (v >>> (8 * k)) & 0xff;
      }
      return b;
    },
  };
}

/** The seed from SEED, or a fresh one; printed either way so a failure can be replayed. */
export function testSeed(label: string): number {
  const fromEnv = process.env['SEED'];
  const seed = fromEnv ? Number(fromEnv) : Math.floor(Math.random() * 2 ** 31);
  console.log(`${label}: SEED=${seed}`);
  return seed;
}
