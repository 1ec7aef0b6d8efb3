import { describe, expect, it } from 'vitest';
import { formatSize, parseDuration, parseSize } from './units.ts';

describe('parseSize', () => {
  it.each([
    ['4096', 4096],
    ['64KiB', 65536],
    ['64MiB', 64 * 1024 ** 2],
    ['1GiB', 1024 ** 3],
    ['1gb', 1e9],
    ['1.5MiB', 1.5 * 1024 ** 2],
  ])('%s → %d', (text, bytes) => {
    expect(parseSize('--disk', text)).toBe(bytes);
  });

  it.each(['', 'abc', '-1MiB', '1XB', '0.5'])('refuses %j naming the field', (text) => {
    expect(() => parseSize('--disk', text)).toThrow(/--disk/);
  });
});

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['30', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
  ])('%s → %d', (text, ms) => {
    expect(parseDuration('--duration', text)).toBe(ms);
  });

  it('refuses garbage naming the field', () => {
    expect(() => parseDuration('--duration', '5 minutes')).toThrow(/--duration/);
  });
});

describe('formatSize', () => {
  it('uses binary units', () => {
    expect(formatSize(512)).toBe('512 B');
    expect(formatSize(1536)).toBe('1.5 KiB');
    expect(formatSize(64 * 1024 ** 2)).toBe('64 MiB');
  });
});
