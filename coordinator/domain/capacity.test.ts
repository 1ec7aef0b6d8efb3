import { describe, expect, it } from 'vitest';
import { planCapacity, peakRate, type CapacityVmInput, type DiskChurnInput } from './capacity.ts';

const MB = 1_000_000;
const GB = 1_000_000_000;

function churn(c: Partial<DiskChurnInput> & { index?: number }): DiskChurnInput {
  return {
    index: 0,
    avgBytesPerHour: 0,
    peakMinuteBytes: 0,
    peakFiveMinutesBytes: 0,
    peakQuarterHourBytes: 0,
    peakHourBytes: 0,
    ...c,
  };
}

function vm(over: Partial<CapacityVmInput> & { vm: string }): CapacityVmInput {
  return {
    server: 'NY',
    cloud: 'Gold',
    host: 'ny-hv1',
    protected: true,
    policy: { name: 'p', copyFrequency: '5m', retentionHours: 4, compression: false },
    priority: 'normal',
    disks: [{ index: 0, sizeBytes: 100 * GB }],
    churn: { windowMinutes: 1440, disks: [churn({})] },
    ...over,
  };
}

describe('peakRate', () => {
  const d = churn({
    peakMinuteBytes: 120 * MB,
    peakFiveMinutesBytes: 300 * MB,
    peakQuarterHourBytes: 450 * MB,
    peakHourBytes: 720 * MB,
  });
  it('uses the smallest window at least as long as the interval', () => {
    expect(peakRate([d], 30_000)).toBe(2 * MB); // 120 MB / 60 s
    expect(peakRate([d], 300_000)).toBe(1 * MB); // 300 MB / 300 s
    expect(peakRate([d], 900_000)).toBe(0.5 * MB); // 450 MB / 900 s
  });
  it('adds the disks’ peaks', () => {
    expect(peakRate([d, d], 300_000)).toBe(2 * MB);
  });
  it('counts windows in the reported bucket length (a development host’s short buckets)', () => {
    // 2 s buckets: windows of 2, 10, 30 and 120 s. A 30 s interval takes the 15-bucket
    // window, whose 450 MB were written in 30 s, not in 15 minutes.
    expect(peakRate([d], 30_000, 2_000)).toBe(15 * MB);
    // 3 s: 10 s; 1 bucket (2 s) already covers 1 s.
    expect(peakRate([d], 3_000, 2_000)).toBe(30 * MB); // 300 MB / 10 s
    expect(peakRate([d], 1_000, 2_000)).toBe(60 * MB); // 120 MB / 2 s
    // Longer than every window: the longest (60 buckets = 120 s).
    expect(peakRate([d], 300_000, 2_000)).toBe(6 * MB); // 720 MB / 120 s
    // 0 or absent: the minute of older hosts.
    expect(peakRate([d], 30_000, 0)).toBe(2 * MB);
  });
});

describe('planCapacity', () => {
  it('works a VM through: bandwidth, initial copy, undo storage', () => {
    // 5-minute copies; the busiest 5 minutes wrote 1.5 GB → 5 MB/s; 720 MB/h on average.
    const plan = planCapacity(
      [
        vm({
          vm: 'db',
          churn: {
            windowMinutes: 1440,
            disks: [
              churn({
                avgBytesPerHour: 720 * MB,
                peakFiveMinutesBytes: 1500 * MB,
                peakHourBytes: 6 * GB,
              }),
            ],
          },
        }),
      ],
      { linkBytesPerSecond: 20 * MB },
    );
    const db = plan.vms[0]!;
    expect(db.requiredBytesPerSecond).toBe(5 * MB);
    expect(db.peakBytesPerInterval).toBe(1500 * MB);
    expect(db.averageBytesPerSecond).toBe(200_000); // 720 MB / 3600 s
    expect(db.initialCopySeconds).toBe(5000); // 100 GB at 20 MB/s
    expect(db.undoBytes).toBe(4 * 720 * MB); // 4 h of retention
    expect(db.replicaStorageBytes).toBe(100 * GB + 2880 * MB);
    expect(db.carried).toBe(true);
    expect(plan.total.notCarried).toEqual([]);
  });

  it('halves what a compressing policy sends (the stated ratio)', () => {
    const plan = planCapacity(
      [
        vm({
          vm: 'web',
          policy: { name: 'p', copyFrequency: '30s', retentionHours: 1, compression: true },
          churn: { windowMinutes: 60, disks: [churn({ peakMinuteBytes: 600 * MB })] },
        }),
      ],
      { linkBytesPerSecond: 100 * MB },
    );
    expect(plan.vms[0]!.requiredBytesPerSecond).toBe(5 * MB); // 10 MB/s raw × 0.5
    expect(plan.vms[0]!.initialCopySeconds).toBe(500); // 100 GB × 0.5 at 100 MB/s
    expect(plan.compressionRatio).toBe(0.5);
  });

  it('uses the compression replication measured for the VM once it carried enough', () => {
    const web = (sent: CapacityVmInput['sent'], compression = true) =>
      vm({
        vm: 'web',
        policy: { name: 'p', copyFrequency: '30s', retentionHours: 1, compression },
        churn: { windowMinutes: 60, disks: [churn({ peakMinuteBytes: 600 * MB })] },
        sent,
      });
    // Incompressible data: the chunks travelled raw, so 10 MB/s of churn needs 10 MB/s.
    const [random] = planCapacity([web({ rawBytes: 200 * MB, wireBytes: 200 * MB })]).vms;
    expect(random).toMatchObject({
      requiredBytesPerSecond: 10 * MB,
      compressionRatio: 1,
      compressionMeasured: true,
      initialCopySeconds: 1000, // 100 GB at the default 100 MB/s
    });
    const [text] = planCapacity([web({ rawBytes: 200 * MB, wireBytes: 50 * MB })]).vms;
    expect(text).toMatchObject({ requiredBytesPerSecond: 2.5 * MB, compressionRatio: 0.25 });
    // Too little carried to say: the assumed ratio.
    const [young] = planCapacity([web({ rawBytes: 1 * MB, wireBytes: 1 * MB })]).vms;
    expect(young).toMatchObject({
      requiredBytesPerSecond: 5 * MB,
      compressionRatio: 0.5,
      compressionMeasured: false,
    });
    // A policy that does not compress sends the raw bytes, whatever was measured.
    const [off] = planCapacity([web({ rawBytes: 200 * MB, wireBytes: 50 * MB }, false)]).vms;
    expect(off).toMatchObject({ requiredBytesPerSecond: 10 * MB, compressionRatio: 1 });
  });

  it('uses the reported bucket length: rates, the window measured, the peak per hour', () => {
    // 6 s buckets (a development host): 5 buckets = 30 s ≥ the 30 s interval. 120 buckets
    // measured = 12 minutes.
    const c = churn({
      avgBytesPerHour: 3600 * MB,
      peakMinuteBytes: 12 * MB,
      peakFiveMinutesBytes: 45 * MB,
      peakQuarterHourBytes: 90 * MB,
      peakHourBytes: 360 * MB,
    });
    const plan = planCapacity([
      vm({
        vm: 'dev',
        policy: { name: 'p', copyFrequency: '30s', retentionHours: 1, compression: false },
        churn: { windowMinutes: 120, bucketMs: 6_000, disks: [c] },
      }),
    ]);
    expect(plan.vms[0]).toMatchObject({
      requiredBytesPerSecond: 1.5 * MB, // 45 MB / (5 × 6 s)
      peakBytesPerInterval: 45 * MB,
      measuredMinutes: 12,
      churnPeakBytesPerHour: 3600 * MB, // 360 MB in 6 minutes
      averageBytesPerSecond: 1 * MB, // the host's average is per real hour already
    });
    // The same figures from a host that reports no bucket length are minutes.
    const old = planCapacity([
      vm({
        vm: 'old',
        policy: { name: 'p', copyFrequency: '30s', retentionHours: 1, compression: false },
        churn: { windowMinutes: 120, disks: [c] },
      }),
    ]);
    expect(old.vms[0]).toMatchObject({
      requiredBytesPerSecond: 200_000, // 12 MB / 60 s
      measuredMinutes: 120,
      churnPeakBytesPerHour: 360 * MB,
    });
  });

  it('caps undo data by the disk size', () => {
    const plan = planCapacity([
      vm({
        vm: 'busy',
        disks: [{ index: 0, sizeBytes: 10 * GB }],
        policy: { name: 'p', copyFrequency: '15m', retentionHours: 24, compression: false },
        churn: { windowMinutes: 1440, disks: [churn({ avgBytesPerHour: 2 * GB })] },
      }),
    ]);
    expect(plan.vms[0]!.undoBytes).toBe(10 * GB);
  });

  it('names the VMs the link cannot carry, admitting high priority first', () => {
    const needs = (mbPerSecond: number) => ({
      windowMinutes: 1440,
      disks: [churn({ peakFiveMinutesBytes: mbPerSecond * 300 * MB })],
    });
    const plan = planCapacity(
      [
        vm({ vm: 'batch', priority: 'low', churn: needs(6) }),
        vm({ vm: 'erp', priority: 'high', churn: needs(8) }),
        vm({ vm: 'web', churn: needs(3) }),
        vm({ vm: 'video', churn: needs(25) }),
      ],
      { linkBytesPerSecond: 20 * MB },
    );
    // erp 8 (high), web 3 (normal) = 11; video 25 exceeds the link; batch 6 fits in 9 left.
    expect(plan.total.notCarried).toEqual(['video']);
    expect(plan.vms.find((v) => v.vm === 'video')!.note).toContain('alone needs 25 MB/s');
    const tight = planCapacity(
      [vm({ vm: 'batch', priority: 'low', churn: needs(6) }), vm({ vm: 'erp', churn: needs(16) })],
      { linkBytesPerSecond: 20 * MB },
    );
    expect(tight.total.notCarried).toEqual(['batch']);
    expect(tight.total.requiredBytesPerSecond).toBe(22 * MB);
  });

  it('says what it lacks: no policy, no churn measured', () => {
    const plan = planCapacity([
      vm({ vm: 'a', policy: null, protected: false }),
      vm({ vm: 'b', churn: null }),
    ]);
    expect(plan.vms[0]!.note).toContain('no policy');
    expect(plan.vms[0]!.requiredBytesPerSecond).toBe(0);
    expect(plan.vms[1]!.note).toContain('no churn measured');
    expect(plan.total.diskBytes).toBe(200 * GB);
  });
});
