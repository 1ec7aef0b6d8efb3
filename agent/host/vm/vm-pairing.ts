/**
 * Pairing a VM of this host for replication (the local form of what the coordinator will push
 * through the provider): checks the VM can take the role, and decides the baseline the sender
 * may ship from (replication/pairing.ts explains the baseline).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { SecondsiteError, badInput } from '../../../common/errors/errors.ts';
import type { Pairing } from '../replication/pairing.ts';
import type { VmConfig } from './vm-config.ts';

export interface PairInput {
  readonly name: string;
  readonly role: Pairing['role'];
  readonly peerHost: string;
  readonly peerAddress: string;
  readonly vault: string;
  /** @default 1 */
  readonly epoch?: number;
  /** @default true */
  readonly compression?: boolean;
  /** Replica only: disk sizes to create the replica VM with, when it does not exist yet. */
  readonly diskSizes?: readonly number[];
}

/** True when every byte of the file reads as zero (a new sparse image). */
export function fileIsAllZero(path: string): boolean {
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(8 * 1024 * 1024);
  try {
    for (let at = 0; ;) {
      const n = readSync(fd, buf, 0, buf.length, at);
      if (n === 0) return true;
      if (!buf.subarray(0, n).every((b) => b === 0)) return false;
      at += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** The checks for a role, with the message an admin needs. */
export function checkCanPair(config: VmConfig, input: PairInput, running: boolean): void {
  if (input.role === 'replica') {
    if (running || config.protection) {
      throw new SecondsiteError(
        'SS_CONFLICT',
        `VM ${config.name} is ${running ? 'running' : 'protected'} here; a replica VM must be stopped and unprotected (its disks are written only by replication)`,
        { vm: config.name },
      );
    }
    const sizes = input.diskSizes ?? [];
    if (sizes.length > 0 && sizes.join() !== config.disks.map((d) => d.sizeBytes).join()) {
      throw badInput('disks', `VM ${config.name} exists with other disk sizes`);
    }
  }
}

/**
 * The baseline of a new pairing: an unchanged re-pair keeps the old one; a primary whose VM is
 * not protected yet and whose disks are all zeros starts from 'zero'; anything else needs the
 * initial copy first.
 */
export function baselineFor(
  config: VmConfig,
  vmDir: string,
  input: PairInput,
  old: Pairing | undefined,
): Pairing['baseline'] {
  if (input.role === 'replica') return 'zero';
  const same =
    old &&
    old.role === input.role &&
    old.peerHost === input.peerHost &&
    old.vault === input.vault &&
    old.epoch === (input.epoch ?? 1);
  if (same) return old.baseline;
  if (config.protection) return 'initial-copy-required';
  const zero = config.disks.every((d) => fileIsAllZero(join(vmDir, d.file)));
  return zero ? 'zero' : 'initial-copy-required';
}
