/**
 * A VM's configuration as the host agent keeps it: <data>/vms/<name>/vm.json, validated on
 * every read (a hand-edited file with a bad value is refused, naming the field) and written
 * atomically (temporary file, fsync, rename, fsync of the folder) so a crash leaves the old or
 * the new file, never half of one.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomicSync } from '../../../common/fs/atomic-file.ts';
import { join } from 'node:path';
import { z } from 'zod';
import { SecondsiteError, badInput } from '../../../common/errors/errors.ts';

/** Letters, digits, '.', '_', '-'; it names a folder and an NBD export, so no '/' or spaces. */
export const VM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Copy frequencies the product offers (R16): 30 s, 5 min, 15 min. */
export const COPY_FREQUENCIES = [30, 300, 900] as const;

/** Smallest disk: anything smaller is surely a typo ("1M" meant as "1G"). */
export const MIN_DISK_BYTES = 1024 * 1024;

const diskSchema = z.strictObject({
  index: z.number().int().min(0),
  sizeBytes: z.number().int().min(MIN_DISK_BYTES).multipleOf(512),
  /** File name inside the VM folder, or inside `folder` when set. */
  file: z.string().regex(/^disk-\d+\.raw$/),
  /**
   * Absolute folder holding the image instead of the VM folder: a replica disk placed on a
   * storage location (R9), `<location>/<vm>`. Absent: the VM folder.
   */
  folder: z
    .string()
    .startsWith('/')
    .refine((v) => !/\p{Cc}/u.test(v), 'no control characters')
    .optional(),
});

/** An empty network is an adapter that is not connected (R8: an unmapped network). */
const nicSchema = z.strictObject({ network: z.string(), subnet: z.string() });

const protectionSchema = z.strictObject({
  /** 30, 300 or 900 from a policy; shorter when the coordinator scales time (see below). */
  copyFrequencySeconds: z.number().int().min(1).max(900),
  appConsistentHours: z.number().int().min(0).max(12),
  /** When protection began (ms since the epoch). */
  since: z.number().int(),
});

export const vmConfigSchema = z.strictObject({
  schemaVersion: z.literal(1),
  name: z.string().regex(VM_NAME),
  id: z.string().uuid(),
  /** What the agent keeps the VM at, also across its own restarts. */
  state: z.enum(['running', 'stopped']),
  disks: z.array(diskSchema).min(1),
  nics: z.array(nicSchema),
  /** Absent when unprotected. */
  protection: protectionSchema.optional(),
});

export type VmConfig = z.infer<typeof vmConfigSchema>;
export type VmProtection = z.infer<typeof protectionSchema>;
export type VmNic = z.infer<typeof nicSchema>;
export type VmDisk = z.infer<typeof diskSchema>;

export function checkVmName(name: string): string {
  if (!VM_NAME.test(name)) {
    throw badInput('name', `"${name}" is not a VM name (letters, digits, . _ -; up to 63)`);
  }
  return name;
}

/**
 * What the VM manager accepts: any whole number of seconds up to 15 min, because a pairing
 * pushed by the coordinator carries the policy's interval scaled when the coordinator is told
 * to (SECONDSITE_TIME_SCALE, for tests and the demo). The policy frequencies alone (30s, 5m,
 * 15m) are the rule at the edges an administrator uses: the coordinator's policy validation
 * and the local control API (`isPolicyFrequency`, control-server.ts).
 */
export function checkProtection(copyFrequencySeconds: number, appConsistentHours: number): void {
  if (
    !Number.isInteger(copyFrequencySeconds) ||
    copyFrequencySeconds < 1 ||
    copyFrequencySeconds > 900
  ) {
    throw badInput(
      'copyFrequency',
      `must be a whole number of seconds from 1 to 900, not ${copyFrequencySeconds}`,
    );
  }
  if (!Number.isInteger(appConsistentHours) || appConsistentHours < 0 || appConsistentHours > 12) {
    throw badInput('appConsistentHours', `must be a whole number from 0 to 12`);
  }
}

/** A copy frequency an administrator may choose: 30s, 5m or 15m (R11). */
export function isPolicyFrequency(seconds: number): boolean {
  return (COPY_FREQUENCIES as readonly number[]).includes(seconds);
}

/** Where the image of disk `d` is: its own folder when placed (R9), else the VM folder. */
export function diskPath(vmDir: string, d: VmDisk): string {
  return join(d.folder ?? vmDir, d.file);
}

export function vmConfigPath(vmDir: string): string {
  return join(vmDir, 'vm.json');
}

export function readVmConfig(vmDir: string): VmConfig {
  const path = vmConfigPath(vmDir);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new SecondsiteError('SS_IO', `cannot read ${path}`, { path }, { cause: e });
  }
  const parsed = vmConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SecondsiteError('SS_IO', `${path}: ${issue?.path.join('.')}: ${issue?.message}`, {
      path,
    });
  }
  return parsed.data;
}

/** Atomic replace; see the file comment. */
export function writeVmConfig(vmDir: string, config: VmConfig): void {
  const path = vmConfigPath(vmDir);
  writeFileAtomicSync(path, `${JSON.stringify(vmConfigSchema.parse(config), null, 2)}\n`);
}
