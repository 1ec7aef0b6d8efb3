/**
 * Pairing a VM of this host for replication (the local form of what the coordinator will push
 * through the provider): checks the VM can take the role, and decides the baseline the sender
 * may ship from (replication/pairing.ts explains the baseline).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { isAllZero } from '../../../common/bytes/all-zero.ts';
import { SecondsiteError, badInput } from '../../../common/errors/errors.ts';
import type { Pairing } from '../replication/pairing.ts';
import { diskPath, type VmConfig, type VmNic } from './vm-config.ts';

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
  /**
   * Replica only, when the VM is created: the storage location of each disk (R9); '' or
   * absent = the VM folder. The image goes in `<location>/<vm>/`.
   */
  readonly diskFolders?: readonly string[];
  /** Replica only: the replica VM's network adapters (R8); replace the VM's when given. */
  readonly nics?: readonly VmNic[];
  /** Replica only: hours the recovery points are kept. @default the receiver's (24) */
  readonly retentionHours?: number;
  /** Primary only: reach the peer with tickets on its ticket port. @default false */
  readonly ticketAuth?: boolean;
  /** Primary only, for a new pairing: nothing ships until resumed. @default false */
  readonly paused?: boolean;
  /**
   * Primary only, for a new pairing (host_control.proto PairHostVmCommand.baseline): what the
   * peer's disks already hold. 'resync': a replica exists there (onboarding, R19; reverse after
   * an unplanned failover): compare hashes and send only what differs; 'in-sync': they equal
   * this VM's disks now (nothing to compare). @default decided from the disks
   */
  readonly existingReplica?: 'resync' | 'in-sync';
}

/** The pairing of `old` is another one than `input` asks for: unpair first (SS_CONFLICT). */
export function checkNoConflict(name: string, old: Pairing | undefined, input: PairInput): void {
  if (!old) return;
  if (old.role === input.role && old.peerHost === input.peerHost && old.vault === input.vault) {
    return;
  }
  throw new SecondsiteError(
    'SS_CONFLICT',
    `VM ${name} is already paired as ${old.role} with host ${old.peerHost}; unpair it before pairing it as ${input.role} with ${input.peerHost}`,
    { vm: name, role: old.role, peerHost: old.peerHost },
  );
}

/** Pairing fields that are not the baseline, as the input asks for them. */
export function pairingFields(
  input: PairInput,
  old: Pairing | undefined,
): Omit<Pairing, 'baseline' | 'schemaVersion'> {
  const same = old?.epoch === (input.epoch ?? 1);
  const paused = input.role === 'primary' && (same ? old.paused : input.paused);
  const retentionHours =
    input.role === 'replica' ? (input.retentionHours ?? old?.retentionHours) : undefined;
  return {
    role: input.role,
    peerHost: input.peerHost,
    peerAddress: input.peerAddress,
    vault: input.vault,
    epoch: input.epoch ?? 1,
    compression: input.compression ?? true,
    ...(paused ? { paused: true } : {}),
    ...(input.role === 'primary' && input.ticketAuth ? { ticketAuth: true } : {}),
    ...(retentionHours === undefined ? {} : { retentionHours }),
  };
}

/** True when every byte of the file reads as zero (a new sparse image). */
export function fileIsAllZero(path: string): boolean {
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(8 * 1024 * 1024);
  try {
    for (let at = 0; ;) {
      const n = readSync(fd, buf, 0, buf.length, at);
      if (n === 0) return true;
      if (!isAllZero(buf.subarray(0, n))) return false;
      at += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** The checks for a role, with the message an admin needs. */
export function checkCanPair(config: VmConfig, input: PairInput, running: boolean): void {
  if (input.role === 'primary' && !input.peerAddress) {
    throw badInput('peerAddress', "a primary needs the peer's replication address HOST:PORT");
  }
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
 * The baseline of a new pairing: an unchanged re-pair keeps the old one; a primary told the
 * replica exists compares with it ('resync-required') or ships on ('copied', in sync); a
 * primary whose VM is not protected yet and whose disks are all zeros starts from 'zero';
 * anything else needs the initial copy first.
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
  if (input.existingReplica === 'resync') return 'resync-required';
  if (input.existingReplica === 'in-sync') return 'copied';
  if (config.protection) return 'initial-copy-required';
  const zero = config.disks.every((d) => fileIsAllZero(diskPath(vmDir, d)));
  return zero ? 'zero' : 'initial-copy-required';
}
