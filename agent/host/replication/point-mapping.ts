/** RecoveryPoint between the journal's record and the wire message (types.proto). */
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { RecoveryPointRecord } from '../journal/types.ts';
import { safeInt } from './chunk-codec.ts';
import type { RecoveryPointMsg } from './wire-types.ts';

export function pointToWire(p: RecoveryPointRecord): RecoveryPointMsg {
  return {
    id: p.id,
    timeMs: p.time,
    type:
      p.type === 'app-consistent'
        ? 'RECOVERY_POINT_TYPE_APP_CONSISTENT'
        : 'RECOVERY_POINT_TYPE_CRASH_CONSISTENT',
    segment: p.segment,
    freezeFailed: p.freezeFailed ?? '',
  };
}

export function pointFromWire(m: RecoveryPointMsg | null | undefined): RecoveryPointRecord {
  if (!m || !m.id) throw new SecondsiteError('SS_PROTOCOL', 'segment start without a point');
  const type =
    m.type === 'RECOVERY_POINT_TYPE_APP_CONSISTENT'
      ? 'app-consistent'
      : m.type === 'RECOVERY_POINT_TYPE_CRASH_CONSISTENT'
        ? 'crash-consistent'
        : undefined;
  if (!type) throw new SecondsiteError('SS_PROTOCOL', `point ${m.id} has no type`);
  return {
    id: m.id,
    time: safeInt(m.timeMs, 'point time'),
    type,
    segment: safeInt(m.segment, 'point segment'),
    ...(m.freezeFailed ? { freezeFailed: m.freezeFailed } : {}),
  };
}
