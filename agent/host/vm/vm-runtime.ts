/**
 * One running VM: its disks opened (through the journal when protected, raw otherwise), each
 * served as an NBD export, its guest-agent channel, and while protected its cycle loop.
 *
 * States: running → stopping → stopped. Protection can be switched while running: every disk
 * is held at once (requests in flight finish, new ones wait), the backing devices change
 * under the exports, and the held requests resume, so the guest stays connected.
 *
 * Two failover forms (agent/host/failover): a runtime on external disks (a failed-over VM
 * running from a recovery-point view until commit, when `materialize` moves it onto its own
 * images under a new journal, again without disconnecting the guest), and a runtime without
 * a guest (`serve: false`, or `detachGuest`): no exports and no guest channel, only the
 * journal open, so a planned failover can cut and ship the final point with no guest writing.
 */
import { mkdirSync, rmSync } from 'node:fs';
import type { Logger } from '../../../common/log/log.ts';
import type { Clock } from '../../../common/time/clock.ts';
import type { BlockDevice } from '../nbd/block-device.ts';
import { serveExport, type NbdExport } from '../nbd/server.ts';
import { openVmJournal, type VmJournalExtras } from '../journal/vm-journal.ts';
import type { RecoveryPointRecord, VmJournal } from '../journal/types.ts';
import { createCycleRunner, type CycleRunner } from '../cycles/cycle-runner.ts';
import { openPointIndex, type PointIndex } from '../cycles/point-index.ts';
import type { CutKind } from '../cycles/domain/schedule.ts';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { RawDisk } from './raw-disk.ts';
import { SwitchableDevice } from './device-switch.ts';
import type { ChurnStats } from './churn-stats.ts';
import { listenGuestAgent, type GuestAgentChannel } from './guest-agent.ts';
import { checkSocketPath, layout } from './layout.ts';
import { diskPath, type VmConfig, type VmProtection } from './vm-config.ts';

export type VmRuntimeState = 'running' | 'stopping' | 'stopped';

/** A running VM's journal, with the step a resync needs (journal overflow, R20 resync). */
export type RuntimeJournal = VmJournal & VmJournalExtras;

/** What every running VM shares: the agent's settings. */
export interface RuntimeContext {
  readonly dataDir: string;
  readonly clock: Clock;
  readonly log: Logger;
  /** @default 10000 */
  readonly freezeTimeoutMs: number;
  /** A development override of every VM's copy frequency (the demo uses a few seconds). */
  readonly copyFrequencyOverrideMs?: number;
  /** Passed to the journal; its default when absent. */
  readonly journalCapBytes?: number;
  /** Called after a cut asked through the manager sealed a segment (wakes the sender). */
  readonly onSealed?: (vm: string) => void;
  /**
   * Asked before a VM starts (a start, or the restart after an agent restart): refuse it (a
   * fenced or prepared VM) or serve external disks (a failed-over VM's view). @default none
   */
  readonly startHook?: (vm: string) => StartHook | undefined;
  /** Guest write churn per VM and disk (R22); every served disk's writes are counted. */
  readonly churn?: ChurnStats;
}

export type StartHook =
  { readonly refuse: string } | { readonly external: () => Promise<ExternalDisks> };

/** Disks served instead of the VM's images: a failover view (agent/host/failover). */
export interface ExternalDisks {
  readonly disks: readonly BlockDevice[];
  /** The runtime is done with them: flush and close (what the view needs to resume stays). */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Serve these instead of the VM's images: no journal, protect is refused. */
  readonly external?: ExternalDisks;
  /** false: no exports, no guest channel, no cycles (only the journal). @default true */
  readonly serve?: boolean;
}

export interface RuntimeInfo {
  readonly nbd: readonly string[];
  readonly journalState: string;
  readonly unshippedBytes: number;
  readonly guestConnected: boolean;
}

interface Backing {
  readonly raw: RawDisk[];
  readonly journal?: RuntimeJournal;
  readonly external?: ExternalDisks;
}

export class VmRuntime {
  state: VmRuntimeState = 'running';
  private cycles: { runner: CycleRunner; loop: Promise<void> } | undefined;
  private points: PointIndex | undefined;

  private constructor(
    private readonly ctx: RuntimeContext,
    private config: VmConfig,
    private backing: Backing,
    private readonly devices: SwitchableDevice[],
    private exports: NbdExport[],
    private guest: GuestAgentChannel | undefined,
    private readonly log: Logger,
  ) {}

  static async start(
    ctx: RuntimeContext,
    config: VmConfig,
    opts: StartOptions = {},
  ): Promise<VmRuntime> {
    const log = ctx.log.child({ component: 'vm', vm: config.name });
    const vmDir = layout.vmDir(ctx.dataDir, config.name);
    mkdirSync(layout.runDir(ctx.dataDir), { recursive: true, mode: 0o700 });
    const undo: Array<() => Promise<void>> = [];
    try {
      const backing = opts.external
        ? { raw: [], external: opts.external }
        : await openBacking(ctx, config, vmDir);
      undo.push(() => closeBacking(backing));
      const churn = (i: number) => ctx.churn?.recorder(config.name, i, ctx.clock);
      const devices = config.disks.map(
        (_, i) => new SwitchableDevice(deviceOf(backing, i), churn(i)),
      );
      const exports: NbdExport[] = [];
      if (opts.serve === false) {
        log.info('VM opened without a guest (journal only)');
        return new VmRuntime(ctx, config, backing, devices, exports, undefined, log);
      }
      for (const disk of config.disks) {
        const e = await serveExport({
          socketPath: checkSocketPath(layout.exportSocket(ctx.dataDir, config.name, disk.index)),
          exportName: layout.exportName(config.name, disk.index),
          device: devices[disk.index]!,
          log: log.child({ disk: disk.index }),
          description: `secondsite VM ${config.name} disk ${disk.index}`,
        });
        exports.push(e);
        undo.push(() => e.close());
      }
      const guest = await listenGuestAgent({
        socketPath: checkSocketPath(layout.guestSocket(ctx.dataDir, config.name)),
        vm: config.name,
        clock: ctx.clock,
        log: ctx.log.child({ component: 'guest-agent', vm: config.name }),
      });
      const vm = new VmRuntime(ctx, config, backing, devices, exports, guest, log);
      vm.startCycles();
      log.info(
        { protected: Boolean(config.protection), external: Boolean(opts.external) },
        'VM started',
      );
      return vm;
    } catch (e) {
      for (const u of undo.reverse()) await u().catch(() => undefined);
      throw e;
    }
  }

  /** The open journal while protected (the sender ships its sealed segments). */
  get journal(): RuntimeJournal | undefined {
    return this.backing.journal;
  }

  /** The recovery points of this VM's current protection, oldest first. */
  recoveryPoints(): readonly RecoveryPointRecord[] {
    return this.points?.list() ?? [];
  }

  info(): RuntimeInfo {
    return {
      nbd: this.exports.map((e) => e.uri),
      journalState: this.backing.journal?.state ?? '',
      unshippedBytes: this.backing.journal?.unshippedBytes() ?? 0,
      guestConnected: this.guest?.state === 'connected',
    };
  }

  /** Runs on external disks (a failover view). */
  get external(): boolean {
    return this.backing.external !== undefined;
  }

  /**
   * Planned failover: the guest goes (exports and guest channel closed, in-flight requests
   * answered first, cycles stopped); the journal stays open for the final cut and shipping.
   */
  async detachGuest(): Promise<void> {
    await this.stopCycles();
    const exports = this.exports;
    this.exports = [];
    await Promise.all(exports.map((e) => e.close()));
    await this.guest?.close();
    this.guest = undefined;
    this.log.info('guest detached (planned failover)');
  }

  /**
   * Failover commit: moves the VM from its external view onto its own images under a new
   * journal (`config` carries the protection). While every request is held, the journal is
   * opened on the images and `fill` writes the view's changes through it; then the exports
   * switch to the journaled disks and the view is closed. A failure leaves the view serving.
   */
  async materialize(config: VmConfig, fill: (journal: RuntimeJournal) => Promise<void>) {
    const external = this.backing.external;
    if (!external) {
      throw new SecondsiteError('SS_CONFLICT', `VM ${config.name} does not run on a view`, {
        vm: config.name,
      });
    }
    await this.switchBacking(async () => {
      const raw = openRawDisks(layout.vmDir(this.ctx.dataDir, config.name), config);
      let journal: RuntimeJournal;
      try {
        journal = await openJournal(this.ctx, config, raw);
      } catch (e) {
        await Promise.all(raw.map((d) => d.close()));
        throw e;
      }
      try {
        await fill(journal);
      } catch (e) {
        await journal.close();
        throw e;
      }
      await external.close();
      return { raw, journal };
    });
    this.config = config;
    this.startCycles();
  }

  /** Starts journaling under the running exports (config already carries the protection). */
  async protect(config: VmConfig): Promise<void> {
    if (this.backing.external) {
      throw new SecondsiteError(
        'SS_CONFLICT',
        `VM ${config.name} runs on a failover view: commit the failover first`,
        { vm: config.name },
      );
    }
    if (this.backing.journal) {
      this.config = config;
      return this.restartCycles();
    }
    await this.switchBacking(async () => {
      await Promise.all(this.backing.raw.map((d) => d.flush()));
      return {
        raw: this.backing.raw,
        journal: await openJournal(this.ctx, config, this.backing.raw),
      };
    });
    this.config = config;
    this.startCycles();
  }

  /** Stops journaling; the journal and the point index are discarded. */
  async unprotect(config: VmConfig): Promise<void> {
    await this.stopCycles();
    const journal = this.backing.journal;
    if (journal) {
      await this.switchBacking(async () => {
        await journal.close(); // closes the raw disks too
        return { raw: openRawDisks(layout.vmDir(this.ctx.dataDir, config.name), config) };
      });
    }
    this.config = config;
    this.points = undefined;
    discardProtectionData(this.ctx.dataDir, config.name);
  }

  async cut(kind: CutKind): Promise<RecoveryPointRecord> {
    if (this.cycles) return this.cycles.runner.cutNow(kind);
    const journal = this.backing.journal;
    if (!journal || this.guest) {
      throw new SecondsiteError('SS_CONFLICT', `VM ${this.config.name} is not protected`, {
        vm: this.config.name,
      });
    }
    // No guest (planned failover): nothing to freeze, so the cut is crash-consistent.
    const point = await journal.cut({ type: 'crash-consistent' });
    this.points ??= openPointIndex(layout.pointIndex(this.ctx.dataDir, this.config.name), this.log);
    this.points.append(point);
    this.log.info({ point }, 'recovery point cut');
    return point;
  }

  async stop(): Promise<void> {
    this.state = 'stopping';
    await this.stopCycles();
    await Promise.all(this.exports.map((e) => e.close()));
    await this.guest?.close();
    await closeBacking(this.backing);
    this.state = 'stopped';
    this.log.info('VM stopped');
  }

  private async switchBacking(next: () => Promise<Backing>): Promise<void> {
    const releases = await Promise.all(this.devices.map((d) => d.hold()));
    try {
      this.backing = await next();
      this.devices.forEach((d, i) => d.replace(deviceOf(this.backing, i)));
    } finally {
      for (const r of releases) r();
    }
  }

  private startCycles(): void {
    const journal = this.backing.journal;
    const p = this.config.protection;
    if (!journal || !p || !this.guest) return;
    this.points ??= openPointIndex(layout.pointIndex(this.ctx.dataDir, this.config.name), this.log);
    const guest = this.guest;
    const runner = createCycleRunner({
      journal,
      guest,
      points: this.points,
      schedule: scheduleOf(this.ctx, p),
      freezeTimeoutMs: this.ctx.freezeTimeoutMs,
      clock: this.ctx.clock,
      log: this.ctx.log.child({ component: 'cycles', vm: this.config.name }),
    });
    const loop = runner.run(new AbortController().signal).catch((e: unknown) => {
      this.log.error({ err: e }, 'cycle loop ended with an error');
    });
    this.cycles = { runner, loop };
  }

  private async stopCycles(): Promise<void> {
    const c = this.cycles;
    this.cycles = undefined;
    if (!c) return;
    await c.runner.shutdown();
    await c.loop;
  }

  private async restartCycles(): Promise<void> {
    await this.stopCycles();
    this.startCycles();
  }
}

function scheduleOf(ctx: RuntimeContext, p: VmProtection) {
  return {
    copyFrequencyMs: ctx.copyFrequencyOverrideMs ?? p.copyFrequencySeconds * 1000,
    appConsistentMs: p.appConsistentHours * 3_600_000,
  };
}

function deviceOf(backing: Backing, index: number): BlockDevice {
  if (backing.external) return backing.external.disks[index]!;
  return backing.journal ? backing.journal.disk(index) : backing.raw[index]!;
}

function openRawDisks(vmDir: string, config: VmConfig): RawDisk[] {
  const disks: RawDisk[] = [];
  try {
    for (const d of config.disks) disks.push(RawDisk.open(diskPath(vmDir, d)));
    return disks;
  } catch (e) {
    for (const d of disks) void d.close();
    throw new SecondsiteError(
      'SS_IO',
      `cannot open the disks of VM ${config.name}`,
      {},
      { cause: e },
    );
  }
}

function openJournal(
  ctx: RuntimeContext,
  config: VmConfig,
  raw: RawDisk[],
): Promise<RuntimeJournal> {
  const dir = layout.journalDir(ctx.dataDir, config.name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return openVmJournal({
    dir,
    vmId: config.id,
    disks: raw,
    capBytes: ctx.journalCapBytes,
    clock: ctx.clock,
    log: ctx.log.child({ component: 'journal', vm: config.name }),
    onShippable: () => ctx.onSealed?.(config.name),
  });
}

async function openBacking(ctx: RuntimeContext, config: VmConfig, vmDir: string): Promise<Backing> {
  const raw = openRawDisks(vmDir, config);
  if (!config.protection) return { raw };
  try {
    return { raw, journal: await openJournal(ctx, config, raw) };
  } catch (e) {
    await Promise.all(raw.map((d) => d.close()));
    throw e;
  }
}

async function closeBacking(backing: Backing): Promise<void> {
  if (backing.external) await backing.external.close();
  else if (backing.journal) await backing.journal.close();
  else await Promise.all(backing.raw.map((d) => d.close()));
}

/** After unprotect: a journal of an earlier protection must never be replayed later. */
export function discardProtectionData(dataDir: string, vm: string): void {
  rmSync(layout.journalDir(dataDir, vm), { recursive: true, force: true });
  rmSync(layout.pointIndex(dataDir, vm), { force: true });
}
