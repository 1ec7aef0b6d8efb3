import { describe, expect, it } from 'vitest';
import { compileWorkloadOptions } from './main.ts';

const nbd = ['nbd+unix:///vm1-0?socket=/tmp/x.sock'];

describe('compileWorkloadOptions', () => {
  it('applies the documented defaults', () => {
    expect(compileWorkloadOptions({ nbd, seed: '5' })).toMatchObject({
      rateBytes: 10e6,
      blockSize: 65536,
      durationMs: 10_000,
      queueDepth: 4,
      seed: 5,
      verify: false,
    });
  });

  it('picks a seed when none is given', () => {
    expect(Number.isInteger(compileWorkloadOptions({ nbd }).seed)).toBe(true);
  });

  it.each([
    [{}, '--nbd'],
    [{ nbd: ['nbd://host:10809/x'] }, '--nbd'],
    [{ nbd, rate: 'fast' }, '--rate'],
    [{ nbd, duration: 'forever' }, '--duration'],
    [{ nbd, blockSize: '1000' }, '--block-size'],
    [{ nbd, seed: '-1' }, '--seed'],
    [{ nbd, queueDepth: '0' }, '--queue-depth'],
  ])('refuses %j naming %s', (flags, field) => {
    expect(() => compileWorkloadOptions(flags)).toThrow(
      expect.objectContaining({
        code: 'SS_BAD_INPUT',
        details: expect.objectContaining({ field }),
      }),
    );
  });
});
