/**
 * Which retained recovery point a failover command names (pure): a point id, "latest" (also
 * empty) or "latest-app-consistent". SS_NOT_FOUND names what was asked when none fits.
 */
import { SecondsiteError } from '../../../../common/errors/errors.ts';
import type { RecoveryPointRecord } from '../../journal/types.ts';

export function choosePoint(
  points: readonly RecoveryPointRecord[],
  spec: string,
): RecoveryPointRecord {
  const found =
    spec === '' || spec === 'latest'
      ? points.at(-1)
      : spec === 'latest-app-consistent'
        ? points.findLast((p) => p.type === 'app-consistent')
        : points.find((p) => p.id === spec);
  if (!found) {
    const what = spec === 'latest-app-consistent' ? 'no app-consistent point' : `no point ${spec}`;
    throw new SecondsiteError('SS_NOT_FOUND', `${what} is retained`, {
      point: spec,
      retained: points.length,
    });
  }
  return found;
}
