import { describe, expect, it } from 'vitest';
import { pointsToPrune, undoNeeded, type RetentionCandidate } from './retention.ts';

const H = 3_600_000;
const now = 100 * H;

function point(seq: number, hoursAgo: number, app = false): RetentionCandidate {
  return { seq, time: now - hoursAgo * H, type: app ? 'app-consistent' : 'crash-consistent' };
}

describe('pointsToPrune', () => {
  it('drops points older than the window, oldest first', () => {
    const points = [point(1, 30), point(2, 25), point(3, 23), point(4, 1)];
    expect(pointsToPrune(points, now, { retentionMs: 24 * H })).toEqual([1, 2]);
  });

  it('never drops the latest point, however old', () => {
    const points = [point(1, 50), point(2, 40)];
    expect(pointsToPrune(points, now, { retentionMs: 24 * H })).toEqual([1]);
  });

  it('keeps nothing extra at exactly the window edge', () => {
    expect(pointsToPrune([point(1, 24), point(2, 0)], now, { retentionMs: 24 * H })).toEqual([]);
  });

  it('applies the app-consistent window to app-consistent points only', () => {
    const points = [point(1, 70, true), point(2, 40, true), point(3, 30), point(4, 1)];
    const rules = { retentionMs: 24 * H, appConsistentRetentionMs: 48 * H };
    expect(pointsToPrune(points, now, rules)).toEqual([1, 3]);
  });

  it('uses the crash window for app-consistent points when none is given', () => {
    const points = [point(1, 30, true), point(2, 1)];
    expect(pointsToPrune(points, now, { retentionMs: 24 * H })).toEqual([1]);
  });

  it('has nothing to prune without points', () => {
    expect(pointsToPrune([], now, { retentionMs: H })).toEqual([]);
  });
});

describe('undoNeeded', () => {
  it('keeps undo of segments after the oldest point, up to the last applied', () => {
    expect(undoNeeded(5, 4, 9)).toBe(true);
    expect(undoNeeded(4, 4, 9)).toBe(false);
    expect(undoNeeded(10, 4, 9)).toBe(false);
    expect(undoNeeded(5, undefined, 9)).toBe(false);
  });
});
