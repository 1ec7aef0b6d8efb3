/**
 * openReplicaStore's options, checked once and compiled into a frozen runtime shape.
 */
import { badInput } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { Clock } from '../../../common/time/clock.ts';
import type { RawDisk } from '../vm/raw-disk.ts';
import type { RetentionRules } from './retention.ts';
import type { ReplicaStoreOptions } from './types.ts';

const HOUR_MS = 3_600_000;
/** 8 MiB: eight maximal runs per undo-file write, small enough to keep per open VM. */
const DEFAULT_BATCH_BYTES = 8 << 20;

export interface CompiledOptions {
  readonly dir: string;
  readonly vmId: string;
  readonly disks: readonly RawDisk[];
  readonly clock: Clock;
  readonly log: Logger;
  readonly rules: RetentionRules;
  readonly batchBytes: number;
  readonly diskPaths: readonly string[] | undefined;
}

function positiveHours(field: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw badInput(field, `must be a positive number of hours, not ${value}`);
  }
  return value * HOUR_MS;
}

export function validateOptions(o: ReplicaStoreOptions, minBatchBytes: number): CompiledOptions {
  if (!o.dir) throw badInput('dir', 'is required');
  if (!o.vmId) throw badInput('vmId', 'is required');
  if (o.disks.length === 0) throw badInput('disks', 'at least one replica disk is required');
  if (o.diskPaths && o.diskPaths.length !== o.disks.length) {
    throw badInput('diskPaths', `names ${o.diskPaths.length} images for ${o.disks.length} disks`);
  }
  const batchBytes = o.batchBytes ?? DEFAULT_BATCH_BYTES;
  if (!Number.isSafeInteger(batchBytes) || batchBytes < minBatchBytes) {
    throw badInput('batchBytes', `must be at least ${minBatchBytes}`);
  }
  const retentionMs = positiveHours('retentionHours', o.retentionHours);
  const rules: RetentionRules =
    o.appConsistentRetentionHours === undefined
      ? { retentionMs }
      : {
          retentionMs,
          appConsistentRetentionMs: positiveHours(
            'appConsistentRetentionHours',
            o.appConsistentRetentionHours,
          ),
        };
  return Object.freeze({
    dir: o.dir,
    vmId: o.vmId,
    disks: Object.freeze([...o.disks]),
    clock: o.clock,
    log: o.log,
    rules: Object.freeze(rules),
    batchBytes,
    diskPaths: o.diskPaths ? Object.freeze([...o.diskPaths]) : undefined,
  });
}
