/**
 * The storage-path crash sweep (issue 2): real NBD clients (qemu-io) write through a real host
 * agent process, which is killed with SIGKILL after every flush while more writes are in
 * flight. After each restart it checks the two promises of the journal:
 *
 *   1. durability: every write acknowledged before the last completed flush is on the disk;
 *      writes after that flush (in flight at the kill) may or may not be, byte by byte;
 *   2. the journal is the truth: the disk equals the replay of every valid journal record onto
 *      an empty disk (while the VM is journaling; the sweep keeps its journal under the cap).
 *
 * Each round: (a) qemu-io runs a seeded sequence of write/discard/zero ending in a flush and
 * exits: all of it is acknowledged and flushed; (b) a second sequence starts without a flush
 * and the agent is killed after a random delay; (c) the agent restarts (journal recovery runs)
 * and the disk is read back through the export and checked.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listSegments } from '../../agent/host/journal/journal-dir.ts';
import { readSegment } from '../../agent/host/journal/segment-reader.ts';
import { RecordType } from '../../agent/host/journal/segment-format.ts';
import { layout } from '../../agent/host/vm/layout.ts';
import { jsonOf, runCli, startDaemon, type Daemon } from '../helpers/secondsite-cli.ts';
import { seededRandom, type Random } from '../helpers/seeded-random.ts';
import { waitFor } from '../helpers/wait-for.ts';

const MiB = 2 ** 20;
const DISK_BYTES = 32 * MiB;
const VM = 'sweep';

/** One qemu-io operation and its effect on a byte model of the disk. */
interface Op {
  readonly cmd: string;
  readonly offset: number;
  readonly length: number;
  /** The byte every position of the range holds afterwards. */
  readonly byte: number;
}

export interface SweepOptions {
  seed: number;
  rounds: number;
  log?: (line: string) => void;
}

export interface SweepReport {
  seed: number;
  rounds: number;
  inFlightOpsSeen: number;
  recordsReplayed: number;
}

function randomOps(rnd: Random, count: number): Op[] {
  const ops: Op[] = [];
  for (let i = 0; i < count; i++) {
    // 512-byte aligned (qemu-io's default alignment for raw), up to 256 KiB.
    const length = rnd.range(1, 512) * 512;
    const offset = rnd.int((DISK_BYTES - length) / 512) * 512;
    const kind = rnd.int(10);
    if (kind < 7) {
      const byte = rnd.range(1, 255);
      const fua = rnd.int(4) === 0 ? ' -f' : '';
      ops.push({ cmd: `write${fua} -P ${byte} ${offset} ${length}`, offset, length, byte });
    } else if (kind < 9) {
      ops.push({ cmd: `write -z ${offset} ${length}`, offset, length, byte: 0 });
    } else {
      ops.push({ cmd: `discard ${offset} ${length}`, offset, length, byte: 0 });
    }
  }
  return ops;
}

function qemuIo(uri: string, cmds: string[]): ReturnType<typeof spawn> {
  const args = ['-f', 'raw', uri, ...cmds.flatMap((c) => ['-c', c])];
  return spawn('qemu-io', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

async function runQemuIo(uri: string, cmds: string[]): Promise<void> {
  const child = qemuIo(uri, cmds);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`qemu-io failed (${code}): ${err}`);
}

async function readDisk(uri: string, into: string): Promise<Buffer> {
  const child = spawn('nbdcopy', [uri, into], { stdio: ['ignore', 'ignore', 'inherit'] });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`nbdcopy exited with ${code}`);
  return readFileSync(into);
}

/** Replays every valid record of the VM's journal onto an empty disk. */
function replayJournal(journalDir: string): { disk: Buffer; records: number } {
  const disk = Buffer.alloc(DISK_BYTES);
  let records = 0;
  for (const seg of listSegments(journalDir)) {
    for (const r of readSegment(seg.path).records) {
      if (r.disk !== 0) continue;
      if (r.type === RecordType.write && r.data) r.data.copy(disk, r.offset);
      else if (r.type === RecordType.trim || r.type === RecordType.zero) {
        disk.fill(0, r.offset, r.offset + r.length);
      } else continue;
      records++;
    }
  }
  return { disk, records };
}

class Host {
  private daemon: Daemon | undefined;
  constructor(private readonly data: string) {}

  async start(): Promise<void> {
    this.daemon = startDaemon([
      'host',
      'start',
      '--standalone',
      '--data',
      this.data,
      '--name',
      'sweep-host',
      // Large enough that the sweep's writes never overflow the journal into bitmap mode.
      '--journal-cap',
      '1GiB',
    ]);
    const daemon = this.daemon;
    let exited: number | string | null | undefined;
    void daemon.exited.then((code) => (exited = code));
    await waitFor(
      async () => {
        if (exited !== undefined) {
          throw new Error(`host agent exited (${exited}) while starting:\n${daemon.stderr()}`);
        }
        return (await runCli(['host', 'vm', 'list', '--data', this.data, '--json'])).code === 0;
      },
      { what: 'host agent control socket', timeoutMs: 60_000 },
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n--- host agent stderr ---\n${daemon.stderr().slice(-4000)}`);
    });
  }

  async kill(): Promise<void> {
    if (!this.daemon) return;
    this.daemon.child.kill('SIGKILL');
    await this.daemon.exited;
    this.daemon = undefined;
  }

  async stop(): Promise<void> {
    if (!this.daemon) return;
    this.daemon.child.kill('SIGTERM');
    await this.daemon.exited;
    this.daemon = undefined;
  }

  async cli(args: string[]): Promise<unknown> {
    const r = await runCli([...args, '--data', this.data, '--json']);
    if (r.code !== 0) throw new Error(`secondsite ${args.join(' ')}: ${r.stderr}`);
    return jsonOf(r);
  }

  async uri(): Promise<string> {
    const vms = (await this.cli(['host', 'vm', 'list'])) as Array<{
      name: string;
      state: string;
      disks: Array<{ nbd: string }>;
    }>;
    const vm = vms.find((v) => v.name === VM && v.state === 'running');
    if (!vm?.disks[0]) throw new Error('the sweep VM is not running');
    return vm.disks[0].nbd;
  }
}

function apply(model: Buffer, ops: readonly Op[]): void {
  for (const op of ops) model.fill(op.byte, op.offset, op.offset + op.length);
}

/** Bytes outside the in-flight ops must equal the flushed model; inside, any op's value. */
function checkDurability(
  disk: Buffer,
  flushed: Buffer,
  inFlight: readonly Op[],
  round: number,
): void {
  const allowed = new Map<number, Set<number>>();
  for (const op of inFlight) {
    for (let i = op.offset; i < op.offset + op.length; i++) {
      let s = allowed.get(i);
      if (!s) allowed.set(i, (s = new Set([flushed[i]!])));
      s.add(op.byte);
    }
  }
  for (let i = 0; i < DISK_BYTES; i++) {
    if (disk[i] === flushed[i]) continue;
    if (allowed.get(i)?.has(disk[i]!)) continue;
    throw new Error(
      `round ${round}: byte ${i} is ${disk[i]} but the last flushed state has ${flushed[i]}` +
        (allowed.has(i) ? ` (in-flight ops allow ${[...allowed.get(i)!].join(',')})` : ''),
    );
  }
}

export async function runSweep(opts: SweepOptions): Promise<SweepReport> {
  const log = opts.log ?? (() => {});
  const rnd = seededRandom(opts.seed);
  const dir = mkdtempSync(join(tmpdir(), 'ss-sweep-'));
  const data = join(dir, 'host');
  const host = new Host(data);
  const model = Buffer.alloc(DISK_BYTES);
  let inFlightOpsSeen = 0;
  let recordsReplayed = 0;
  try {
    await host.start();
    await host.cli(['host', 'vm', 'create', VM, '--disk', `${DISK_BYTES / MiB}MiB`]);
    await host.cli(['host', 'vm', 'protect', VM, '--copy-frequency', '30s']);
    await host.cli(['host', 'vm', 'start', VM]);
    for (let round = 1; round <= opts.rounds; round++) {
      const uri = await host.uri();
      const acked = randomOps(rnd, rnd.range(3, 12));
      await runQemuIo(uri, [...acked.map((o) => o.cmd), 'flush']);
      apply(model, acked);
      if (rnd.int(3) === 0) await host.cli(['host', 'vm', 'cut', VM]);
      // In flight at the kill: started, not flushed, killed after a random delay.
      const inFlight = randomOps(rnd, rnd.range(5, 40));
      const writer = qemuIo(
        uri,
        inFlight.map((o) => o.cmd),
      );
      // Listen for the exit now: the writer may well finish before the kill.
      const writerDone = once(writer, 'exit').catch(() => undefined);
      writer.stderr?.resume();
      await new Promise((r) => setTimeout(r, rnd.int(150)));
      await host.kill();
      await writerDone;
      inFlightOpsSeen += inFlight.length;
      await host.start();
      const disk = await readDisk(await host.uri(), join(dir, 'readback.raw'));
      checkDurability(disk, model, inFlight, round);
      const replay = replayJournal(layout.journalDir(data, VM));
      if (!replay.disk.equals(disk))
        throw new Error(`round ${round}: disk differs from the journal replay`);
      recordsReplayed = replay.records;
      disk.copy(model); // what survived is the new base
      log(
        `round ${round}/${opts.rounds}: ok (${acked.length} acked, ${inFlight.length} in flight)`,
      );
    }
    await host.stop();
    return { seed: opts.seed, rounds: opts.rounds, inFlightOpsSeen, recordsReplayed };
  } finally {
    await host.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
