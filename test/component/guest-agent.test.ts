/**
 * The guest-agent exchange between the host's channel (agent/host/vm/guest-agent.ts), the
 * cycle runner, and real guests: the workload's guest-agent client over a real NBD export,
 * and a raw socket guest that says hello and then never answers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createCycleRunner } from '../../agent/host/cycles/cycle-runner.ts';
import { openPointIndex } from '../../agent/host/cycles/point-index.ts';
import type { RecoveryPointRecord, RecoveryPointType } from '../../agent/host/journal/types.ts';
import type { BlockDevice } from '../../agent/host/nbd/block-device.ts';
import { serveExport, type NbdExport } from '../../agent/host/nbd/server.ts';
import { listenGuestAgent, type GuestAgentChannel } from '../../agent/host/vm/guest-agent.ts';
import { RawDisk, createSparseImage } from '../../agent/host/vm/raw-disk.ts';
import { connectGuestAgent, type GuestAgentClient } from '../../agent/guest/guest-agent-client.ts';
import { Workload } from '../../agent/guest/workload.ts';
import { NbdClient } from '../../common/nbd/client.ts';
import { silentLogger } from '../../common/log/log.ts';
import { systemClock } from '../../common/time/clock.ts';
import { frame } from '../../common/wire/length-prefixed.ts';
import { guestAgentCodec } from '../../common/wire/guest-agent-messages.ts';
import { waitFor } from '../helpers/wait-for.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ss-guest-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function channel(dir: string): Promise<GuestAgentChannel> {
  const ch = await listenGuestAgent({
    socketPath: join(dir, 'guest-agent.sock'),
    vm: 'vm1',
    clock: systemClock,
    log: silentLogger,
  });
  cleanups.push(() => ch.close());
  return ch;
}

/** A journal stand-in that records the cuts it is asked for. */
function fakeJournal() {
  const cuts: Array<{ type: RecoveryPointType; freezeFailed?: string }> = [];
  return {
    cuts,
    state: 'journaling' as const,
    async cut(opts: {
      type: RecoveryPointType;
      freezeFailed?: string;
    }): Promise<RecoveryPointRecord> {
      cuts.push(opts);
      return { id: `p${cuts.length}`, time: Date.now(), segment: cuts.length, ...opts };
    },
  };
}

function makeRunner(dir: string, guest: GuestAgentChannel, freezeTimeoutMs: number) {
  const journal = fakeJournal();
  const r = createCycleRunner({
    journal,
    guest,
    points: openPointIndex(join(dir, 'points.jsonl'), silentLogger),
    schedule: { copyFrequencyMs: 3_600_000, appConsistentMs: 0 },
    freezeTimeoutMs,
    clock: systemClock,
    log: silentLogger,
  });
  return { runner: r, journal };
}

/** A disk served over NBD whose writes are counted, with a workload guest on it. */
async function servedWorkload(dir: string, guestSocket: string) {
  const path = join(dir, 'disk.raw');
  createSparseImage(path, 16 * 1024 * 1024);
  const raw = RawDisk.open(path);
  const counts = { writes: 0, flushes: 0 };
  const device: BlockDevice = {
    size: raw.size,
    preferredBlockSize: raw.preferredBlockSize,
    read: (o, l) => raw.read(o, l),
    write: (o, d, f) => (counts.writes++, raw.write(o, d, f)),
    trim: (o, l, f) => raw.trim(o, l, f),
    writeZeroes: (o, l, f) => raw.writeZeroes(o, l, f),
    flush: () => (counts.flushes++, raw.flush()),
    close: () => raw.close(),
  };
  const exp: NbdExport = await serveExport({
    socketPath: join(dir, 'nbd.sock'),
    exportName: 'vm1-0',
    device,
    log: silentLogger,
  });
  const client = await NbdClient.connect(exp.uri);
  const workload = new Workload([client], {
    seed: 1,
    blockSize: 4096,
    rateBytes: 0,
    durationMs: 120_000,
    queueDepth: 4,
  });
  const stop = new AbortController();
  const done = workload.run(stop.signal);
  const agent: GuestAgentClient = connectGuestAgent({
    socketPath: guestSocket,
    vm: 'vm1',
    hooks: workload,
  });
  cleanups.push(async () => {
    agent.close();
    stop.abort();
    await done.catch(() => undefined);
    await client.close();
    await exp.close();
    await raw.close();
  });
  return { counts, workload };
}

describe('guest agent', () => {
  it('freezes a guest, cuts app-consistent, and thaws it', async () => {
    const dir = tempDir();
    const ch = await channel(dir);
    const { counts, workload } = await servedWorkload(dir, ch.socketPath);
    await waitFor(() => ch.state === 'connected' && counts.writes > 10, { what: 'guest writing' });
    const { runner, journal } = makeRunner(dir, ch, 10_000);
    const point = await runner.cutNow('app-consistent');
    expect(point.type).toBe('app-consistent');
    expect(point.freezeFailed).toBeUndefined();
    expect(journal.cuts).toEqual([{ type: 'app-consistent' }]);
    expect(workload.stats.freezes).toBe(1);
    const after = counts.writes;
    await waitFor(() => counts.writes > after + 10, { what: 'writes resuming after the thaw' });
    expect(workload.stats.selfThaws).toBe(0);
  });

  it('holds every guest write between the freeze reply and the thaw, after a flush', async () => {
    const dir = tempDir();
    const ch = await channel(dir);
    const { counts, workload } = await servedWorkload(dir, ch.socketPath);
    await waitFor(() => ch.state === 'connected' && counts.writes > 10, { what: 'guest writing' });
    const flushesBefore = counts.flushes;
    const freeze = await ch.freeze(10_000);
    expect(freeze.ok).toBe(true);
    expect(counts.flushes).toBeGreaterThan(flushesBefore);
    const frozenAt = counts.writes;
    // Keep the guest frozen long enough that an unthrottled writer would have issued many
    // writes; this is the test's stimulus, not a wait for a condition.
    const until = Date.now() + 300;
    await waitFor(() => Date.now() > until, { what: 'the frozen window' });
    expect(counts.writes).toBe(frozenAt);
    expect(workload.state).toBe('frozen');
    await ch.thaw(freeze.ok ? freeze.id : '');
    await waitFor(() => counts.writes > frozenAt + 10, { what: 'writes resuming after the thaw' });
  });

  it('a guest thaws by itself when the host never sends thaw', async () => {
    const dir = tempDir();
    const ch = await channel(dir);
    const { counts, workload } = await servedWorkload(dir, ch.socketPath);
    await waitFor(() => ch.state === 'connected' && counts.writes > 10, { what: 'guest writing' });
    const freeze = await ch.freeze(100); // the guest is told to thaw itself after 200 ms
    expect(freeze.ok).toBe(true);
    await waitFor(() => workload.stats.selfThaws === 1, { what: 'self-thaw' });
    const after = counts.writes;
    await waitFor(() => counts.writes > after + 10, { what: 'writes resuming' });
  });

  it('a guest that never answers gives a crash-consistent point that says why', async () => {
    const dir = tempDir();
    const ch = await channel(dir);
    const mute: Socket = connect(ch.socketPath);
    const received: string[] = [];
    mute.on('data', (chunk: Buffer) => received.push(chunk.toString('latin1')));
    cleanups.push(() => void mute.destroy());
    await new Promise((resolve) => mute.once('connect', resolve));
    mute.write(
      frame(
        guestAgentCodec().encode({
          step: 'hello',
          hello: { vm: 'vm1', protocolMin: 1, protocolMax: 1 },
        }),
      ),
    );
    await waitFor(() => ch.state === 'connected', { what: 'hello' });
    const { runner, journal } = makeRunner(dir, ch, 300);
    const point = await runner.cutNow('app-consistent');
    expect(point.type).toBe('crash-consistent');
    expect(point.freezeFailed).toMatch(/did not freeze within 300 ms/);
    expect(journal.cuts).toEqual([{ type: 'crash-consistent', freezeFailed: point.freezeFailed }]);
  });

  it('without a guest agent an app-consistent cut is crash-consistent and says so', async () => {
    const dir = tempDir();
    const ch = await channel(dir);
    const { runner } = makeRunner(dir, ch, 300);
    const point = await runner.cutNow('app-consistent');
    expect(point).toMatchObject({
      type: 'crash-consistent',
      freezeFailed: 'no guest agent is connected',
    });
  });

  it('refuses a guest whose protocol range does not overlap', async () => {
    const dir = tempDir();
    const ch = await channel(dir);
    const s = connect(ch.socketPath);
    cleanups.push(() => void s.destroy());
    await new Promise((resolve) => s.once('connect', resolve));
    const closed = new Promise((resolve) => s.once('close', resolve));
    s.write(
      frame(
        guestAgentCodec().encode({
          step: 'hello',
          hello: { vm: 'vm1', protocolMin: 7, protocolMax: 9 },
        }),
      ),
    );
    await closed;
    expect(ch.state).toBe('listening');
  });
});
