/**
 * The stand-in guest: writes pattern blocks (pattern.ts) at a given rate through NBD clients,
 * one per disk, with up to `queueDepth` writes in flight, and can be quiesced (freeze: no new
 * writes, in-flight ones finish, every disk flushed; thaw: resume).
 *
 * Blocks are picked by a seeded random walk over all disks; a block already in flight is
 * never written again until its write completes, so "the latest generation" of every block is
 * well defined and verify() can check it exactly.
 *
 * States: writing ⇄ frozen, then draining → done.
 */
import type { NbdClient } from '../../common/nbd/client.ts';
import { blockBuffer, checkBlock, fillBlock, seededRandom } from './pattern.ts';

export type WorkloadState = 'writing' | 'frozen' | 'draining' | 'done';

export interface WorkloadSettings {
  readonly seed: number;
  readonly blockSize: number;
  /** Bytes per second; 0 = as fast as the disks take it. */
  readonly rateBytes: number;
  readonly durationMs: number;
  readonly queueDepth: number;
}

export interface WorkloadStats {
  bytesWritten: number;
  ops: number;
  freezes: number;
  /** Freezes that ended by the guest's own timeout instead of a thaw request. */
  selfThaws: number;
}

export class Workload {
  state: WorkloadState = 'writing';
  readonly stats: WorkloadStats = { bytesWritten: 0, ops: 0, freezes: 0, selfThaws: 0 };
  /** Latest generation written per disk and block (0 = never). */
  private readonly generations: Uint32Array[];
  private readonly inFlight = new Set<number>();
  private readonly random: () => number;
  private gate: { promise: Promise<void>; open: () => void } | undefined;
  private idleWaiters: Array<() => void> = [];
  private readonly started = performance.now();

  constructor(
    private readonly disks: readonly NbdClient[],
    private readonly settings: WorkloadSettings,
  ) {
    this.generations = disks.map((d) => new Uint32Array(Math.floor(d.size / settings.blockSize)));
    this.random = seededRandom(settings.seed);
  }

  /** Writes until the duration is over (or `signal` aborts), then waits for the last writes. */
  async run(signal: AbortSignal): Promise<void> {
    const end = this.started + this.settings.durationMs;
    const workers = Array.from({ length: this.settings.queueDepth }, () =>
      this.worker(end, signal),
    );
    await Promise.all(workers);
    this.state = 'draining';
    await Promise.all(this.disks.map((d) => d.flush()));
    this.state = 'done';
  }

  elapsedMs(): number {
    return performance.now() - this.started;
  }

  /** Quiesce for the guest agent: hold new writes, wait for those in flight, flush. */
  async freeze(): Promise<void> {
    if (!this.gate) {
      let open!: () => void;
      const promise = new Promise<void>((resolve) => (open = resolve));
      this.gate = { promise, open };
    }
    this.state = 'frozen';
    this.stats.freezes++;
    if (this.inFlight.size > 0)
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await Promise.all(this.disks.map((d) => d.flush()));
  }

  thaw(reason: 'thaw-request' | 'timeout'): void {
    if (reason === 'timeout') this.stats.selfThaws++;
    const gate = this.gate;
    this.gate = undefined;
    if (this.state === 'frozen') this.state = 'writing';
    gate?.open();
  }

  /** Reads back every block written and checks it holds its latest generation. */
  async verify(): Promise<{ blocks: number; mismatches: string[] }> {
    const mismatches: string[] = [];
    let blocks = 0;
    for (let disk = 0; disk < this.disks.length; disk++) {
      const gens = this.generations[disk]!;
      for (let b = 0; b < gens.length; b++) {
        if (gens[b] === 0) continue;
        blocks++;
        const offset = b * this.settings.blockSize;
        const data = await this.disks[disk]!.read(offset, this.settings.blockSize);
        const got = checkBlock(data, { seed: this.settings.seed, disk, offset });
        if (got.kind !== 'pattern' || got.generation !== gens[b]) {
          const what = got.kind === 'pattern' ? `generation ${got.generation}` : got.kind;
          if (mismatches.length < 20)
            mismatches.push(
              `disk ${disk} offset ${offset}: want generation ${gens[b]}, found ${what}`,
            );
        }
      }
    }
    return { blocks, mismatches };
  }

  private async worker(end: number, signal: AbortSignal): Promise<void> {
    const buf = blockBuffer(this.settings.blockSize);
    while (!signal.aborted) {
      while (this.gate) await this.gate.promise;
      if (performance.now() >= end) return;
      await this.pace(end);
      if (performance.now() >= end || signal.aborted) return;
      if (this.gate) continue; // a freeze began while pacing
      const [disk, block] = this.pick();
      const key = disk * 2 ** 32 + block;
      this.inFlight.add(key);
      const generation = this.generations[disk]![block]! + 1;
      const offset = block * this.settings.blockSize;
      this.stats.bytesWritten += this.settings.blockSize; // counted on issue so pacing is exact
      try {
        await this.disks[disk]!.write(
          offset,
          fillBlock(buf, { seed: this.settings.seed, disk, offset, generation }),
        );
        this.generations[disk]![block] = generation;
        this.stats.ops++;
      } finally {
        this.inFlight.delete(key);
        if (this.inFlight.size === 0) this.wakeIdle();
      }
    }
  }

  /** Waits until issuing one more block keeps the average at or under the rate. */
  private async pace(end: number): Promise<void> {
    if (this.settings.rateBytes <= 0) return;
    for (;;) {
      const next = this.stats.bytesWritten + this.settings.blockSize;
      const dueAt = this.started + (next / this.settings.rateBytes) * 1000;
      const wait = Math.min(dueAt, end) - performance.now();
      if (wait <= 0) return;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  private pick(): [number, number] {
    for (;;) {
      const disk = Math.floor(this.random() * this.disks.length);
      const block = Math.floor(this.random() * this.generations[disk]!.length);
      if (!this.inFlight.has(disk * 2 ** 32 + block)) return [disk, block];
    }
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
