import { describe, expect, it } from 'vitest';
import { isSecondsiteError } from '../../common/errors/errors.ts';
import { compileDemoOptions, parseDemoDuration } from './options.ts';

function refusal(f: () => unknown): { code: string; field: unknown } {
  try {
    f();
  } catch (e) {
    if (isSecondsiteError(e)) return { code: e.code, field: e.details['field'] };
    throw e;
  }
  throw new Error('not refused');
}

describe('demo options', () => {
  it('defaults: two sites, 2 MB/s per VM, time scale 0.2, until stopped, folder removed', () => {
    expect(compileDemoOptions({})).toEqual({
      failover: true,
      singleHost: false,
      durationMs: undefined,
      duration: undefined,
      keep: false,
      rate: '2',
      timeScale: 0.2,
    });
  });

  it('parses durations with and without a unit', () => {
    expect(parseDemoDuration('45s')).toBe(45_000);
    expect(parseDemoDuration('1.5m')).toBe(90_000);
    expect(parseDemoDuration('20')).toBe(20_000);
    expect(parseDemoDuration('500ms')).toBe(500);
    expect(compileDemoOptions({ duration: '2h', timeScale: '1' })).toMatchObject({
      durationMs: 7_200_000,
      timeScale: 1,
    });
  });

  it.each([
    [{ duration: 'soon' }, '--duration'],
    [{ duration: '0s' }, '--duration'],
    [{ duration: '-5s' }, '--duration'],
    [{ rate: 'fast' }, '--rate'],
    [{ rate: '0' }, '--rate'],
    [{ rate: '' }, '--rate'],
    [{ timeScale: '0' }, '--time-scale'],
    [{ timeScale: '2' }, '--time-scale'],
    [{ timeScale: 'x' }, '--time-scale'],
    [{ timeScale: '' }, '--time-scale'],
    [{ singleHost: true, timeScale: '0.5' }, '--time-scale'],
  ])('refuses %o naming %s', (flags, field) => {
    expect(refusal(() => compileDemoOptions(flags))).toEqual({ code: 'SS_BAD_INPUT', field });
  });
});
