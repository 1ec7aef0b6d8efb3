/**
 * A VM's failover state on this host: <data>/vms/<vm>/failover.json, validated on read and
 * replaced atomically (common/fs/atomic-file.ts), removed when nothing is left in it. Every
 * failover command writes it before it answers, so the state survives a restart and a resent
 * command finds what the first one did (failover-ops.ts).
 *
 *   test      a test copy "<vm>-test" of this replica runs from `point` (R23); its overlay in
 *             test/ keeps the test VM's flushed writes across restarts
 *   failover  this replica failed over (R24/R25): 'failed-over' (running on a view of `point`
 *             with its writes in failover/, the other points kept), 'committing' (the commit's
 *             steps, `materialized` once the VM runs on its own disks), 'committed'
 *   prepared  planned failover's source (R24): 'preparing' (guest gone, final point being
 *             shipped), 'prepared' (stopped; `point` shipped and acknowledged; `digests`)
 *   fence     a former primary fenced under `epoch`: it neither starts nor ships again;
 *             `unshippedBytes` of the old epoch were never shipped
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { fsyncDirSync, writeFileAtomicSync } from '../../../common/fs/atomic-file.ts';

const pointSchema = z.strictObject({
  id: z.string().min(1),
  time: z.number(),
  type: z.enum(['crash-consistent', 'app-consistent']),
  segment: z.number().int().min(0),
  freezeFailed: z.string().optional(),
});

const nicSchema = z.strictObject({ network: z.string(), subnet: z.string() });
const digests = z.array(z.string().regex(/^[0-9a-f]{64}$/));

export const failoverStateSchema = z.strictObject({
  schemaVersion: z.literal(1),
  test: z
    .strictObject({ point: pointSchema, nics: z.array(nicSchema), since: z.number() })
    .optional(),
  failover: z
    .strictObject({
      state: z.enum(['failed-over', 'committing', 'committed']),
      epoch: z.number().int().min(0),
      point: pointSchema,
      /** SHA-256 of each disk at `point`, once asked for. */
      digests: digests.optional(),
      /** Commit: the VM runs on its own disks under a journal (the view is gone). */
      materialized: z.boolean().optional(),
    })
    .optional(),
  prepared: z
    .strictObject({
      state: z.enum(['preparing', 'prepared']),
      point: pointSchema.optional(),
      digests: digests.optional(),
    })
    .optional(),
  fence: z
    .strictObject({
      epoch: z.number().int().min(0),
      unshippedBytes: z.number().int().min(0),
      at: z.number(),
    })
    .optional(),
});

export type FailoverState = z.infer<typeof failoverStateSchema>;

const EMPTY: FailoverState = Object.freeze({ schemaVersion: 1 });

export function failoverStatePath(vmDir: string): string {
  return join(vmDir, 'failover.json');
}

/** The overlay folder of the test copy and of the failed-over VM's view. */
export const testOverlayDir = (vmDir: string): string => join(vmDir, 'test');
export const failoverOverlayDir = (vmDir: string): string => join(vmDir, 'failover');

export function readFailoverState(vmDir: string): FailoverState {
  const path = failoverStatePath(vmDir);
  if (!existsSync(path)) return EMPTY;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new SecondsiteError('SS_IO', `cannot read ${path}`, { path }, { cause: e });
  }
  const parsed = failoverStateSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SecondsiteError('SS_IO', `${path}: ${issue?.path.join('.')}: ${issue?.message}`, {
      path,
    });
  }
  return parsed.data;
}

export function writeFailoverState(vmDir: string, state: FailoverState): void {
  const path = failoverStatePath(vmDir);
  const { schemaVersion: _v, ...rest } = failoverStateSchema.parse(state);
  if (Object.values(rest).every((v) => v === undefined)) {
    if (!existsSync(path)) return;
    rmSync(path, { force: true });
    fsyncDirSync(vmDir);
    return;
  }
  writeFileAtomicSync(path, `${JSON.stringify({ schemaVersion: 1, ...rest }, null, 2)}\n`);
}

/**
 * The points a VM's replica store must pin when it opens (holder → point id): the test
 * copy's and the failed-over view's, so no prune or resync runs before the views reopen.
 */
export function pinsOf(vmDir: string): Record<string, string> {
  let st: FailoverState;
  try {
    st = readFailoverState(vmDir);
  } catch {
    return {};
  }
  const pins: Record<string, string> = {};
  if (st.test) pins.test = st.test.point.id;
  const f = st.failover;
  if (f && f.state !== 'committed' && !f.materialized) pins.failover = f.point.id;
  return pins;
}
