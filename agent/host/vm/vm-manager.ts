/**
 * The host agent's VMs: create, start, stop, protect, unprotect, cut, list, delete, and their
 * replication pairings (pair, pause flag and baseline, unpair). Configs live in vm.json files
 * (vm-config.ts), pairings in pairing.json (replication/pairing.ts), files are made and removed
 * by vm-files.ts; running VMs are VmRuntime objects. Operations on one VM are serialised;
 * different VMs proceed independently. Each change is on disk before its call resolves.
 *
 * The desired state is persisted: run() starts every VM whose config says running, so VMs come
 * back after an agent restart (the journal replays its tail when it opens). shutdown() stops
 * them without changing their configs.
 */
import { randomUUID } from 'node:crypto';
import { SecondsiteError, badInput } from '../../../common/errors/errors.ts';
import type { Service } from '../../../common/lifecycle/lifecycle.ts';
import type { RecoveryPointRecord } from '../journal/types.ts';
import {
  readPairing,
  removePairing,
  samePairing,
  writePairing,
  type Pairing,
} from '../replication/pairing.ts';
import { openPointIndex } from '../cycles/point-index.ts';
import type { CutKind } from '../cycles/domain/schedule.ts';
import { layout } from './layout.ts';
import { checkDiskSizes, createDiskImages, deleteVmFiles, loadConfigs } from './vm-files.ts';
import {
  baselineFor,
  checkCanPair,
  checkNoConflict,
  pairingFields,
  type PairInput,
} from './vm-pairing.ts';
import {
  checkProtection,
  checkVmName,
  writeVmConfig,
  type VmConfig,
  type VmNic,
} from './vm-config.ts';
import {
  VmRuntime,
  discardProtectionData,
  type RuntimeContext,
  type RuntimeInfo,
  type RuntimeJournal,
} from './vm-runtime.ts';

export interface VmView {
  readonly config: VmConfig;
  /** Present while the VM runs. */
  readonly runtime?: RuntimeInfo;
  readonly latestPoint?: RecoveryPointRecord;
  /** Present when the VM is paired for replication. */
  readonly pairing?: Pairing;
}

export interface CreateVmInput {
  readonly name: string;
  readonly diskSizes: readonly number[];
  readonly nics: readonly VmNic[];
  /** Storage location (absolute folder) per disk; '' or absent = the VM folder (R9). */
  readonly diskFolders?: readonly string[];
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
  /**
   * Stores the VM's replication pairing (creating a replica VM when disk sizes are given).
   * The same pairing again changes nothing; another role or peer is SS_CONFLICT.
   */
  pair(input: PairInput): Promise<VmView>;
  pairingOf(name: string): Pairing | undefined;
  /**
   * Changes a paired VM's pause flag, baseline or epoch (a failover raises it; persisted);
   * SS_NOT_PAIRED when unpaired.
   */
  updatePairing(
    name: string,
    change: Partial<Pick<Pairing, 'paused' | 'baseline' | 'epoch'>>,
  ): Promise<VmView>;
  /** Replaces the VM's network adapters (a failover's placement); persisted. */
  setNics(name: string, nics: readonly VmNic[]): Promise<VmView>;
  /**
   * Planned failover: the VM keeps only its journal open (no exports, no guest channel, no
   * cycles), so a final point can be cut and shipped with no guest writing. A stopped VM is
   * opened so (the start hook is not asked: this is no start for a guest).
   */
  detachGuest(name: string): Promise<VmView>;
  /**
   * Failover commit: a VM running on a failover view moves onto its own images under a new
   * journal with `protection` (vm-runtime.ts materialize), without disconnecting its guest.
   */
  materialize(
    name: string,
    protection: { copyFrequencySeconds: number; appConsistentHours: number },
    fill: (journal: RuntimeJournal) => Promise<void>,
  ): Promise<VmView>;
  /** Forgets the VM's pairing (persisted); nothing when it has none. */
  unpair(name: string): Promise<VmView>;
  /** Removes a stopped VM: its disks (also placed ones), config and folder. */
  deleteVm(name: string): Promise<void>;
  /** The VM's open journal (running and protected), for the sender. */
  journalOf(name: string): RuntimeJournal | undefined;
  /** Every VM with its pairing, for the replication parts. */
  paired(): Array<{ config: VmConfig; pairing: Pairing }>;
  /** The initial-copy step: the replica now equals the source (baseline 'copied'). */
  setBaseline(name: string, baseline: Pairing['baseline']): Promise<void>;
}

export function createVmManager(ctx: RuntimeContext): VmManager {
  return new Manager(ctx, loadConfigs(ctx));
}

function refuseReplica(pairing: Pairing | undefined, name: string, what: string): void {
  if (pairing?.role !== 'replica') return;
  throw new SecondsiteError(
    'SS_CONFLICT',
    `VM ${name} is a replica on this host (written only by replication); it cannot be ${what}`,
    { vm: name },
  );
}

class Manager implements VmManager {
  private readonly runtimes = new Map<string, VmRuntime>();
  /** Per VM: the tail of its operation chain. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly pairings = new Map<string, Pairing>();

  constructor(
    private readonly ctx: RuntimeContext,
    private readonly configs: Map<string, VmConfig>,
  ) {
    for (const name of configs.keys()) {
      const p = readPairing(layout.vmDir(ctx.dataDir, name));
      if (p) this.pairings.set(name, p);
    }
  }

  async createVm(input: CreateVmInput): Promise<VmView> {
    const name = checkVmName(input.name);
    return this.serial(name, () => this.createUnlocked(input));
  }

  private async createUnlocked(input: CreateVmInput): Promise<VmView> {
    const name = checkVmName(input.name);
    checkDiskSizes(input.diskSizes);
    input.nics.forEach((n, i) => {
      // An empty network is a disconnected adapter; it cannot name a subnet.
      if (!n.network && n.subnet) {
        throw badInput(`nics[${i}].network`, 'must not be empty when a subnet is named');
      }
    });
    if (this.configs.has(name)) {
      throw new SecondsiteError('SS_CONFLICT', `a VM named ${name} already exists`, { vm: name });
    }
    const disks = createDiskImages(this.ctx.dataDir, name, input);
    const config: VmConfig = {
      schemaVersion: 1,
      name,
      id: randomUUID(),
      state: 'stopped',
      disks,
      nics: input.nics.map((n) => ({ network: n.network, subnet: n.subnet })),
    };
    this.save(config); // last: a folder without vm.json is an interrupted create
    this.ctx.log.info({ vm: name, disks: input.diskSizes }, 'VM created');
    return this.view(config);
  }

  startVm(name: string): Promise<VmView> {
    return this.serial(name, async () => {
      const config = this.configOf(name);
      if (!this.runtimes.has(name)) {
        // A failed-over VM is still paired as replica until commit: it runs on its view.
        const hook = this.ctx.startHook?.(name);
        if (!hook || !('external' in hook)) refuseReplica(this.pairings.get(name), name, 'started');
      }
      await this.start(config);
      if (config.state !== 'running') this.save({ ...config, state: 'running' });
      return this.view(this.configOf(name));
    });
  }

  stopVm(name: string): Promise<VmView> {
    return this.serial(name, async () => {
      const config = this.configOf(name);
      await this.runtimes.get(name)?.stop();
      this.runtimes.delete(name);
      if (config.state !== 'stopped') this.save({ ...config, state: 'stopped' });
      return this.view(this.configOf(name));
    });
  }

  async protectVm(
    name: string,
    p: { copyFrequencySeconds: number; appConsistentHours: number },
  ): Promise<VmView> {
    checkProtection(p.copyFrequencySeconds, p.appConsistentHours);
    return this.serial(name, async () => {
      const old = this.configOf(name);
      refuseReplica(this.pairings.get(name), name, 'protected');
      const since = old.protection?.since ?? this.ctx.clock.now();
      const config = { ...old, protection: { ...p, since } } as VmConfig; // checked above
      await this.runtimes.get(name)?.protect(config);
      this.save(config);
      return this.view(config);
    });
  }

  unprotectVm(name: string): Promise<VmView> {
    return this.serial(name, async () => {
      const { protection: dropped, ...config } = this.configOf(name);
      const pairing = this.pairings.get(name);
      if (pairing?.role === 'primary' && dropped !== undefined) {
        // The journal is discarded: the replica can no longer be continued from it.
        this.savePairing(name, { ...pairing, baseline: 'initial-copy-required' });
      }
      const runtime = this.runtimes.get(name);
      if (runtime) await runtime.unprotect(config);
      else discardProtectionData(this.ctx.dataDir, name);
      this.save(config);
      return this.view(config);
    });
  }

  async cut(name: string, kind: CutKind): Promise<RecoveryPointRecord> {
    const config = this.configOf(name);
    const runtime = this.runtimes.get(config.name);
    if (!runtime || !config.protection) {
      throw new SecondsiteError(
        'SS_CONFLICT',
        `VM ${name} must be running and protected to cut a recovery point`,
        { vm: name },
      );
    }
    const point = await runtime.cut(kind);
    this.ctx.onSealed?.(name);
    return point;
  }

  list(): VmView[] {
    return [...this.configs.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((c) => this.view(c));
  }

  points(name: string): readonly RecoveryPointRecord[] {
    return this.pointsOf(this.configOf(name));
  }

  pair(input: PairInput): Promise<VmView> {
    const name = checkVmName(input.name);
    return this.serial(name, async () => {
      const old = this.pairings.get(name);
      checkNoConflict(name, old, input);
      if (!this.configs.has(name) && input.role === 'replica' && input.diskSizes?.length) {
        await this.createUnlocked({
          name,
          diskSizes: input.diskSizes,
          nics: input.nics ?? [],
          ...(input.diskFolders ? { diskFolders: input.diskFolders } : {}),
        });
      }
      let config = this.configOf(name);
      checkCanPair(config, input, this.runtimes.has(name));
      const nics = input.role === 'replica' ? input.nics : undefined;
      if (nics && JSON.stringify(nics) !== JSON.stringify(config.nics)) {
        // A changed network mapping reconnects the replica (R8).
        config = { ...config, nics: nics.map((n) => ({ network: n.network, subnet: n.subnet })) };
        this.save(config);
      }
      const vmDir = layout.vmDir(this.ctx.dataDir, name);
      const pairing: Pairing = {
        schemaVersion: 1,
        ...pairingFields(input, old),
        baseline: baselineFor(config, vmDir, input, old),
      };
      if (!old || !samePairing(old, pairing)) {
        this.savePairing(name, pairing);
        this.ctx.log.info({ vm: name, ...pairing }, 'VM paired');
      }
      return this.view(config);
    });
  }

  pairingOf(name: string): Pairing | undefined {
    return this.pairings.get(name);
  }

  setNics(name: string, nics: readonly VmNic[]): Promise<VmView> {
    return this.serial(name, async () => {
      const config = this.configOf(name);
      if (JSON.stringify(nics) !== JSON.stringify(config.nics)) {
        this.save({ ...config, nics: nics.map((n) => ({ network: n.network, subnet: n.subnet })) });
      }
      return this.view(this.configOf(name));
    });
  }

  detachGuest(name: string): Promise<VmView> {
    return this.serial(name, async () => {
      const config = this.configOf(name);
      const runtime = this.runtimes.get(name);
      if (runtime) await runtime.detachGuest();
      else this.runtimes.set(name, await VmRuntime.start(this.ctx, config, { serve: false }));
      return this.view(config);
    });
  }

  materialize(
    name: string,
    protection: { copyFrequencySeconds: number; appConsistentHours: number },
    fill: (journal: RuntimeJournal) => Promise<void>,
  ): Promise<VmView> {
    return this.serial(name, async () => {
      const old = this.configOf(name);
      const runtime = this.runtimes.get(name);
      if (!runtime?.external) {
        throw new SecondsiteError('SS_CONFLICT', `VM ${name} does not run on a failover view`, {
          vm: name,
        });
      }
      const since = old.protection?.since ?? this.ctx.clock.now();
      const config: VmConfig = { ...old, state: 'running', protection: { ...protection, since } };
      await runtime.materialize(config, fill);
      this.save(config);
      return this.view(config);
    });
  }

  updatePairing(
    name: string,
    change: Partial<Pick<Pairing, 'paused' | 'baseline' | 'epoch'>>,
  ): Promise<VmView> {
    return this.serial(name, async () => {
      const config = this.configOf(name);
      const pairing = this.pairings.get(name);
      if (!pairing) {
        throw new SecondsiteError('SS_NOT_PAIRED', `VM ${name} is not paired`, { vm: name });
      }
      const { paused: _p, ...rest } = { ...pairing, ...change };
      const next: Pairing = (change.paused ?? pairing.paused) ? { ...rest, paused: true } : rest;
      if (!samePairing(pairing, next)) {
        this.savePairing(name, next);
        this.ctx.log.info({ vm: name, ...change }, 'VM pairing changed');
      }
      return this.view(config);
    });
  }

  unpair(name: string): Promise<VmView> {
    return this.serial(name, async () => {
      const config = this.configOf(name);
      if (this.pairings.has(name)) {
        removePairing(layout.vmDir(this.ctx.dataDir, name));
        this.pairings.delete(name);
        this.ctx.log.info({ vm: name }, 'VM unpaired');
      }
      return this.view(config);
    });
  }

  deleteVm(name: string): Promise<void> {
    return this.serial(name, async () => {
      const config = this.configOf(name);
      await this.runtimes.get(name)?.stop();
      this.runtimes.delete(name);
      deleteVmFiles(this.ctx.dataDir, config);
      this.configs.delete(name);
      this.pairings.delete(name);
      this.ctx.log.info({ vm: name }, 'VM deleted');
    });
  }

  journalOf(name: string): RuntimeJournal | undefined {
    return this.runtimes.get(name)?.journal;
  }

  paired(): Array<{ config: VmConfig; pairing: Pairing }> {
    return [...this.pairings.entries()].flatMap(([name, pairing]) => {
      const config = this.configs.get(name);
      return config ? [{ config, pairing }] : [];
    });
  }

  setBaseline(name: string, baseline: Pairing['baseline']): Promise<void> {
    return this.serial(name, async () => {
      const pairing = this.pairings.get(name);
      if (!pairing) {
        throw new SecondsiteError('SS_NOT_PAIRED', `VM ${name} is not paired`, { vm: name });
      }
      this.savePairing(name, { ...pairing, baseline });
      this.ctx.onSealed?.(name);
    });
  }

  private savePairing(name: string, pairing: Pairing): void {
    this.pairings.set(name, writePairing(layout.vmDir(this.ctx.dataDir, name), pairing));
  }

  async run(signal: AbortSignal): Promise<void> {
    for (const config of this.configs.values()) {
      if (config.state !== 'running' || signal.aborted) continue;
      const hook = this.ctx.startHook?.(config.name);
      if (hook && 'refuse' in hook) {
        this.ctx.log.info({ vm: config.name, why: hook.refuse }, 'VM not restarted');
        continue;
      }
      await this.serial(config.name, () => this.start(config)).catch((e: unknown) => {
        this.ctx.log.error({ err: e, vm: config.name }, 'VM did not start');
      });
    }
    if (signal.aborted) return;
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  }

  /** Stops every VM but keeps their configs' state, so the next run() restarts them. */
  async shutdown(): Promise<void> {
    await Promise.all(
      [...this.runtimes.entries()].map(([name, r]) =>
        this.serial(name, () => r.stop()).catch((e: unknown) =>
          this.ctx.log.error({ err: e, vm: name }, 'VM did not stop cleanly'),
        ),
      ),
    );
    this.runtimes.clear();
  }

  /** Runs `fn` after every earlier operation on the same VM. */
  private serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const next = (this.locks.get(name) ?? Promise.resolve()).then(fn);
    this.locks.set(
      name,
      next.catch(() => undefined),
    );
    return next;
  }

  private configOf(name: string): VmConfig {
    const c = this.configs.get(checkVmName(name));
    if (!c) {
      throw new SecondsiteError('SS_NOT_FOUND', `no VM named ${name} on this host`, { vm: name });
    }
    return c;
  }

  private save(config: VmConfig): void {
    writeVmConfig(layout.vmDir(this.ctx.dataDir, config.name), config);
    this.configs.set(config.name, config);
  }

  private view(config: VmConfig): VmView {
    const points = this.pointsOf(config);
    return {
      config,
      runtime: this.runtimes.get(config.name)?.info(),
      latestPoint: points[points.length - 1],
      pairing: this.pairings.get(config.name),
    };
  }

  private pointsOf(config: VmConfig): readonly RecoveryPointRecord[] {
    const runtime = this.runtimes.get(config.name);
    if (runtime) return runtime.recoveryPoints();
    if (!config.protection) return [];
    return openPointIndex(layout.pointIndex(this.ctx.dataDir, config.name), this.ctx.log).list();
  }

  private async start(config: VmConfig): Promise<void> {
    if (this.runtimes.has(config.name)) return;
    const hook = this.ctx.startHook?.(config.name);
    if (hook && 'refuse' in hook) {
      throw new SecondsiteError('SS_CONFLICT', hook.refuse, { vm: config.name });
    }
    const external = hook && 'external' in hook ? await hook.external() : undefined;
    this.runtimes.set(
      config.name,
      await VmRuntime.start(this.ctx, config, external ? { external } : {}),
    );
  }
}
