import { describe, expect, it } from 'vitest';
import type { RecoveryPointRecord } from '../../journal/types.ts';
import { choosePoint } from './point-choice.ts';

const p = (id: string, segment: number, app = false): RecoveryPointRecord => ({
  id,
  time: segment * 1000,
  type: app ? 'app-consistent' : 'crash-consistent',
  segment,
});
const points = [p('a', 1), p('b', 2, true), p('c', 3)];

describe('choosePoint', () => {
  it('picks latest, latest app-consistent, or an id', () => {
    expect(choosePoint(points, 'latest').id).toBe('c');
    expect(choosePoint(points, '').id).toBe('c');
    expect(choosePoint(points, 'latest-app-consistent').id).toBe('b');
    expect(choosePoint(points, 'a').id).toBe('a');
  });
  it('refuses what is not retained', () => {
    expect(() => choosePoint(points, 'zz')).toThrow(
      expect.objectContaining({ code: 'SS_NOT_FOUND' }),
    );
    expect(() => choosePoint([p('a', 1)], 'latest-app-consistent')).toThrow(/app-consistent/);
    expect(() => choosePoint([], 'latest')).toThrow(
      expect.objectContaining({ code: 'SS_NOT_FOUND' }),
    );
  });
});
