/**
 * The host agent's VMs: create, start, stop, protect, unprotect, cut, list. Configs live in
 * vm.json files (vm-config.ts); running VMs are VmRuntime objects. Operations on one VM are
 * serialised; different VMs proceed independently.
 *
 * The desired state is persisted: run() starts every VM whose config says running, so VMs come
 * back after an agent restart (the journal replays its tail when it opens). shutdown() stops
 * them without changing their configs.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SecondsiteError, badInput } from '../../../common/errors/errors.ts';
import type { Service } from '../../../common/lifecycle/lifecycle.ts';
import type { RecoveryPointRecord } from '../journal/types.ts';
import { openPointIndex } from '../cycles/point-index.ts';
import type { CutKind } from '../cycles/domain/schedule.ts';
import { createSparseImage } from './raw-disk.ts';
import { layout } from './layout.ts';
import {
  MIN_DISK_BYTES,
  checkProtection,
  checkVmName,
  readVmConfig,
  writeVmConfig,
  type VmConfig,
  type VmNic,
} from './vm-config.ts';
import {
  VmRuntime,
  discardProtectionData,
  type RuntimeContext,
  type RuntimeInfo,
} from './vm-runtime.ts';

export interface VmView {
  readonly config: VmConfig;
  /** Present while the VM runs. */
  readonly runtime?: RuntimeInfo;
  readonly latestPoint?: RecoveryPointRecord;
}

export interface CreateVmInput {
  readonly name: string;
  readonly diskSizes: readonly number[];
  readonly nics: readonly VmNic[];
}

export interface VmManager extends Service {
  createVm(input: CreateVmInput): Promise<VmView>;
  startVm(name: string): Promise<VmView>;
  stopVm(name: string): Promise<VmView>;
  protectVm(
    name: string,
    p: { copyFrequencySeconds: number; appConsistentHours: number },
  ): Promise<VmView>;
  unprotectVm(name: string): Promise<VmView>;
  cut(name: string, kind: CutKind): Promise<RecoveryPointRecord>;
  list(): VmView[];
  points(name: string): readonly RecoveryPointRecord[];
}

function checkDiskSizes(sizes: readonly number[]): void {
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
function loadConfigs(ctx: RuntimeContext): Map<string, VmConfig> {
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

export function createVmManager(ctx: RuntimeContext): VmManager {
  const configs = loadConfigs(ctx);
  const runtimes = new Map<string, VmRuntime>();
  const locks = new Map<string, Promise<unknown>>();

  /** Runs `fn` after every earlier operation on the same VM. */
  function serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const next = (locks.get(name) ?? Promise.resolve()).then(fn);
    locks.set(
      name,
      next.catch(() => undefined),
    );
    return next;
  }

  function configOf(name: string): VmConfig {
    const c = configs.get(checkVmName(name));
    if (!c)
      throw new SecondsiteError('SS_NOT_FOUND', `no VM named ${name} on this host`, { vm: name });
    return c;
  }

  function save(config: VmConfig): void {
    writeVmConfig(layout.vmDir(ctx.dataDir, config.name), config);
    configs.set(config.name, config);
  }

  function view(config: VmConfig): VmView {
    const runtime = runtimes.get(config.name);
    const points = pointsOf(config);
    return { config, runtime: runtime?.info(), latestPoint: points[points.length - 1] };
  }

  function pointsOf(config: VmConfig): readonly RecoveryPointRecord[] {
    const runtime = runtimes.get(config.name);
    if (runtime) return runtime.recoveryPoints();
    if (!config.protection) return [];
    return openPointIndex(layout.pointIndex(ctx.dataDir, config.name), ctx.log).list();
  }

  async function start(config: VmConfig): Promise<void> {
    if (runtimes.has(config.name)) return;
    runtimes.set(config.name, await VmRuntime.start(ctx, config));
  }

  async function createVm(input: CreateVmInput): Promise<VmView> {
    const name = checkVmName(input.name);
    checkDiskSizes(input.diskSizes);
    input.nics.forEach((n, i) => {
      if (!n.network) throw badInput(`nics[${i}].network`, 'must not be empty');
    });
    return serial(name, async () => {
      if (configs.has(name)) {
        throw new SecondsiteError('SS_CONFLICT', `a VM named ${name} already exists`, { vm: name });
      }
      const vmDir = layout.vmDir(ctx.dataDir, name);
      mkdirSync(vmDir, { mode: 0o700 });
      const disks = input.diskSizes.map((sizeBytes, index) => ({
        index,
        sizeBytes,
        file: layout.diskFile(index),
      }));
      for (const d of disks) createSparseImage(join(vmDir, d.file), d.sizeBytes);
      const config: VmConfig = {
        schemaVersion: 1,
        name,
        id: randomUUID(),
        state: 'stopped',
        disks,
        nics: input.nics.map((n) => ({ network: n.network, subnet: n.subnet })),
      };
      save(config); // last: a folder without vm.json is an interrupted create
      ctx.log.info({ vm: name, disks: input.diskSizes }, 'VM created');
      return view(config);
    });
  }

  return {
    createVm,
    startVm: (name) =>
      serial(name, async () => {
        const config = configOf(name);
        await start(config);
        if (config.state !== 'running') save({ ...config, state: 'running' });
        return view(configOf(name));
      }),
    stopVm: (name) =>
      serial(name, async () => {
        const config = configOf(name);
        await runtimes.get(name)?.stop();
        runtimes.delete(name);
        if (config.state !== 'stopped') save({ ...config, state: 'stopped' });
        return view(configOf(name));
      }),
    protectVm: async (name, p) => {
      checkProtection(p.copyFrequencySeconds, p.appConsistentHours);
      return serial(name, async () => {
        const old = configOf(name);
        const since = old.protection?.since ?? ctx.clock.now();
        const config: VmConfig = { ...old, protection: { ...p, since } as VmConfig['protection'] };
        await runtimes.get(name)?.protect(config);
        save(config);
        return view(config);
      });
    },
    unprotectVm: (name) =>
      serial(name, async () => {
        const { protection: _dropped, ...config } = configOf(name);
        const runtime = runtimes.get(name);
        if (runtime) await runtime.unprotect(config);
        else discardProtectionData(ctx.dataDir, name);
        save(config);
        return view(config);
      }),
    cut: async (name, kind) => {
      const config = configOf(name);
      const runtime = runtimes.get(config.name);
      if (!runtime || !config.protection) {
        throw new SecondsiteError(
          'SS_CONFLICT',
          `VM ${name} must be running and protected to cut a recovery point`,
          {
            vm: name,
          },
        );
      }
      return runtime.cut(kind);
    },
    list: () => [...configs.values()].sort((a, b) => a.name.localeCompare(b.name)).map(view),
    points: (name) => pointsOf(configOf(name)),

    async run(signal: AbortSignal): Promise<void> {
      for (const config of configs.values()) {
        if (config.state !== 'running' || signal.aborted) continue;
        await serial(config.name, () => start(config)).catch((e: unknown) => {
          ctx.log.error({ err: e, vm: config.name }, 'VM did not start');
        });
      }
      if (!signal.aborted)
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    },

    async shutdown(): Promise<void> {
      await Promise.all(
        [...runtimes.entries()].map(([name, r]) =>
          serial(name, () => r.stop()).catch((e: unknown) =>
            ctx.log.error({ err: e, vm: name }, 'VM did not stop cleanly'),
          ),
        ),
      );
      runtimes.clear();
    },
  };
}
