/**
 * A VM's files in the data folder and on storage locations (R9): loading the configs at start,
 * creating the disk images, and deleting everything of a VM. The VM manager serialises the
 * calls per VM; this file only does the file work.
 *
 * Crash order: a create writes the images first and vm.json last (vm-manager.ts), a delete
 * removes the images on storage locations first, then vm.json, then the VM folder. Either way
 * a crash leaves a VM folder without vm.json, which loadConfigs removes at the next start, or
 * a complete VM; a placed image left by a crashed create is overwritten by the next create of
 * that name.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { badInput } from '../../../common/errors/errors.ts';
import { fsyncDirSync } from '../../../common/fs/atomic-file.ts';
import { layout } from './layout.ts';
import { createSparseImage } from './raw-disk.ts';
import {
  MIN_DISK_BYTES,
  diskPath,
  readVmConfig,
  vmConfigPath,
  type VmConfig,
  type VmDisk,
} from './vm-config.ts';
import type { RuntimeContext } from './vm-runtime.ts';

export function checkDiskSizes(sizes: readonly number[]): void {
  if (sizes.length === 0) throw badInput('disks', 'a VM needs at least one disk');
  sizes.forEach((size, i) => {
    if (!Number.isSafeInteger(size) || size < MIN_DISK_BYTES || size % 512 !== 0) {
      throw badInput(
        `disks[${i}]`,
        `size ${size} must be a multiple of 512 bytes and at least 1 MiB`,
      );
    }
  });
}

/** Loads every vm.json; a folder left without one by a crashed create is removed. */
export function loadConfigs(ctx: RuntimeContext): Map<string, VmConfig> {
  const dir = layout.vmsDir(ctx.dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const configs = new Map<string, VmConfig>();
  for (const name of readdirSync(dir).sort()) {
    const vmDir = join(dir, name);
    if (!existsSync(join(vmDir, 'vm.json'))) {
      ctx.log.warn({ vm: name }, 'removing a VM folder without vm.json (an interrupted create)');
      rmSync(vmDir, { recursive: true, force: true });
      continue;
    }
    configs.set(name, readVmConfig(vmDir));
  }
  return configs;
}

/** The folder of each new disk: `<location>/<vm>` for a placed one, '' for the VM folder. */
function diskFolders(
  name: string,
  sizes: readonly number[],
  locations: readonly string[] | undefined,
): string[] {
  return sizes.map((_, i) => {
    const location = locations?.[i] ?? '';
    if (!location) return '';
    if (!isAbsolute(location) || /\p{Cc}/u.test(location)) {
      throw badInput(`disks[${i}].path`, `"${location}" is not an absolute folder path`);
    }
    return join(location, name);
  });
}

/** Makes the VM folder and a sparse image per disk (placed ones in their folders). */
export function createDiskImages(
  dataDir: string,
  name: string,
  input: { diskSizes: readonly number[]; diskFolders?: readonly string[] | undefined },
): VmDisk[] {
  const folders = diskFolders(name, input.diskSizes, input.diskFolders);
  const vmDir = layout.vmDir(dataDir, name);
  mkdirSync(vmDir, { mode: 0o700 });
  const disks = input.diskSizes.map((sizeBytes, index) => {
    const folder = folders[index];
    return { index, sizeBytes, file: layout.diskFile(index), ...(folder ? { folder } : {}) };
  });
  for (const d of disks) {
    const path = diskPath(vmDir, d);
    if (d.folder) {
      mkdirSync(d.folder, { recursive: true, mode: 0o700 });
      rmSync(path, { force: true }); // left by a create that crashed before vm.json
    }
    createSparseImage(path, d.sizeBytes);
  }
  return disks;
}

/** Removes a stopped VM's images, config and folder, durably (see the file comment). */
export function deleteVmFiles(dataDir: string, config: VmConfig): void {
  const vmDir = layout.vmDir(dataDir, config.name);
  for (const d of config.disks) {
    if (!d.folder) continue;
    rmSync(diskPath(vmDir, d), { force: true });
    removeIfEmpty(d.folder);
  }
  rmSync(vmConfigPath(vmDir), { force: true });
  rmSync(vmDir, { recursive: true, force: true });
  fsyncDirSync(layout.vmsDir(dataDir));
}

/** Removes a placed disk's folder once it holds nothing else (never recursively). */
function removeIfEmpty(dir: string): void {
  try {
    if (readdirSync(dir).length === 0) rmdirSync(dir);
  } catch {
    // Gone already, or not ours to remove.
  }
}
