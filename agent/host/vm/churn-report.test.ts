/**
 * The host's side of a development churn bucket: the keeper counts in it, keeps it in
 * churn.json, and the churn report that travels to the coordinator (host_control.proto
 * HostVmChurn) carries it, so the coordinator does not take the buckets for minutes.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../common/log/log.ts';
import { messageCodec } from '../../../common/proto/load.ts';
import { FakeClock } from '../../../common/time/clock.ts';
import type { HostVmChurnMsg } from '../../../common/wire/host-control-messages.ts';
import { churnMsg } from '../enrolment/host-inventory.ts';
import { CHURN_FILE, openChurnStats } from './churn-file.ts';
import { MINUTE_MS } from './churn-stats.ts';

const MiB = 1024 * 1024;
const dirs: string[] = [];

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ss-churn-report-'));
  dirs.push(d);
  return d;
}

describe('the churn report of a host with a development bucket length', () => {
  it('carries the bucket length to the coordinator, through the wire', () => {
    const clock = new FakeClock(1_000_000_000_000);
    const keeper = openChurnStats({
      dataDir: dataDir(),
      clock,
      log: silentLogger,
      bucketMs: 5_000,
    });
    // 4 whole buckets of 5 s, 2 MiB each, then the running one.
    for (let b = 0; b < 5; b++) {
      keeper.stats.record('vm1', 0, 0, 2 * MiB, clock.now() + 100);
      clock.advance(5_000);
    }
    clock.advance(-4_000);
    const msg = churnMsg(keeper.snapshot('vm1')!);
    expect(msg).toMatchObject({ windowMinutes: 4, bucketMs: 5_000 });
    expect(msg.disks[0]).toMatchObject({ peakMinuteBytes: String(2 * MiB) });
    const codec = messageCodec<HostVmChurnMsg>('secondsite.v1.HostVmChurn');
    const back = codec.decode(codec.encode(msg));
    expect(back.bucketMs).toBe(5_000);
    expect(back.windowMinutes).toBe(4);
  });

  it('a production host reports a minute; an older report decodes as 0 (a minute)', () => {
    const clock = new FakeClock(1_000_000_000_000);
    const keeper = openChurnStats({ dataDir: dataDir(), clock, log: silentLogger });
    keeper.stats.record('vm1', 0, 0, MiB, clock.now());
    clock.advance(MINUTE_MS);
    expect(churnMsg(keeper.snapshot('vm1')!).bucketMs).toBe(MINUTE_MS);
    const codec = messageCodec<HostVmChurnMsg>('secondsite.v1.HostVmChurn');
    const old = codec.decode(codec.encode({ windowMinutes: 3, disks: [], hotRegions: [] }));
    expect(old.bucketMs ?? 0).toBe(0);
  });

  it('keeps the length in churn.json and does not read a file of another length', () => {
    const dir = dataDir();
    const clock = new FakeClock(1_000_000_000_000);
    const a = openChurnStats({ dataDir: dir, clock, log: silentLogger, bucketMs: 2_000 });
    a.stats.record('vm1', 0, 0, MiB, clock.now());
    a.save();
    expect(JSON.parse(readFileSync(join(dir, CHURN_FILE), 'utf8'))).toMatchObject({
      bucketMs: 2_000,
    });
    clock.advance(2_000);
    const same = openChurnStats({ dataDir: dir, clock, log: silentLogger, bucketMs: 2_000 });
    expect(same.snapshot('vm1')?.disks[0]?.bytes).toBe(MiB);
    const minute = openChurnStats({ dataDir: dir, clock, log: silentLogger });
    expect(minute.snapshot('vm1')).toBeUndefined();
  });
});
