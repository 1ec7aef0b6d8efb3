import { describe, expect, it } from 'vitest';
import {
  applyEvent,
  churnAttribution,
  checkNotProtected,
  initialCopyDone,
  resyncDone,
  itemView,
  newItem,
  observe,
  pairSettings,
  type ItemRecord,
  type VmStatus,
} from './protection.ts';
import { validatePolicy } from './policy.ts';

const T0 = Date.parse('2026-11-25T10:00:00Z');

function item(over: Partial<ItemRecord> = {}): ItemRecord {
  return {
    ...newItem({
      vaultId: 'v1',
      vm: 'VM1',
      policy: 'gold',
      sourceServer: 'VMM-NewYork',
      sourceCloud: 'GoldCloud1',
      sourceHost: 'ny-hv1',
      targetServer: 'VMM-Chicago',
      targetCloud: 'GoldCloud2',
      epoch: 1,
      now: T0,
    }),
    targetHost: 'chi-hv1',
    ...over,
  };
}

function status(over: Partial<VmStatus> = {}): VmStatus {
  return {
    reachable: true,
    role: 'primary',
    senderState: 'shipping',
    lastError: '',
    baseline: 'zero',
    epoch: 1,
    copyDone: 0,
    copyTotal: 0,
    latestPoint: null,
    pointCount: 0,
    unshippedBytes: 0,
    paused: false,
    ...over,
  };
}

const point = (id: string, time: number) => ({ id, time, type: 'crash-consistent' as const });

describe('item lifecycle', () => {
  it('moves enabling → initial-replication → protected and starts counting cycles then', () => {
    let i = applyEvent(item(), 'initial-started', T0 + 1000);
    expect(i.state).toBe('initial-replication');
    expect(i.protectedSince).toBeNull();
    i = applyEvent(i, 'finalized', T0 + 5000);
    expect(i).toMatchObject({ state: 'protected', protectedSince: T0 + 5000, cycles: [] });
  });

  it('refuses a second enable of a VM that is an item, but not of a disabled one', () => {
    expect(() => checkNotProtected(item({ state: 'protected' }), 'VM1')).toThrow(/already/);
    expect(() => checkNotProtected(item({ state: 'disabled' }), 'VM1')).not.toThrow();
    expect(() => checkNotProtected(undefined, 'VM1')).not.toThrow();
  });

  it('refuses an event the state does not allow, naming the allowed states', () => {
    expect(() => applyEvent(item({ state: 'enabling' }), 'pause', T0)).toThrow(
      /cannot pause VM1: it is enabling; allowed only when protected/,
    );
  });
});

describe('observe', () => {
  const protectedItem = item({ state: 'protected', protectedSince: T0 });

  it('counts a new newest point at the target as a cycle, once', () => {
    const tgt = status({ role: 'replica', latestPoint: point('VM1-5', T0 + 29_000) });
    const once = observe(protectedItem, status(), tgt, T0 + 30_000);
    expect(once.cycles).toEqual([T0 + 30_000]);
    expect(once.latestPoint?.id).toBe('VM1-5');
    const again = observe(once, status(), tgt, T0 + 31_000);
    expect(again.cycles).toEqual([T0 + 30_000]);
  });

  it('opens a failure on a sender error and keeps its start until a success', () => {
    const failing = status({ senderState: 'backoff', lastError: 'SS_UNAVAILABLE: refused' });
    const a = observe(protectedItem, failing, status({ role: 'replica' }), T0 + 10_000);
    expect(a.failure).toEqual({
      since: T0 + 10_000,
      message: 'SS_UNAVAILABLE: refused',
      retrying: true,
    });
    const b = observe(a, failing, status({ role: 'replica' }), T0 + 40_000);
    expect(b.failure?.since).toBe(T0 + 10_000);
    const c = observe(
      b,
      status(),
      status({ role: 'replica', latestPoint: point('VM1-9', T0 + 50_000) }),
      T0 + 51_000,
    );
    expect(c.failure).toBeNull();
  });

  it('reports an unreachable target host as a retrying failure', () => {
    const a = observe(protectedItem, status(), status({ reachable: false }), T0 + 5000);
    expect(a.failure?.message).toMatch(/target host chi-hv1 is not reachable/);
    expect(a.failure?.retrying).toBe(true);
  });

  it('marks a stopped or incompatible sender as not retrying', () => {
    const a = observe(
      protectedItem,
      status({ senderState: 'incompatible', lastError: 'SS_PROTOCOL_INCOMPATIBLE: v9' }),
      status({ role: 'replica' }),
      T0 + 5000,
    );
    expect(a.failure?.retrying).toBe(false);
  });

  it('keeps the initial copy progress the source reports', () => {
    const a = observe(
      item({ state: 'initial-replication' }),
      status({ senderState: 'initial-copy', copyDone: 10, copyTotal: 40 }),
      undefined,
      T0,
    );
    expect(a.copy).toEqual({ done: 10, total: 40 });
  });

  it('drops cycles older than the window', () => {
    const old = { ...protectedItem, cycles: [T0 - 7_200_000, T0 - 60_000] };
    expect(observe(old, status(), status({ role: 'replica' }), T0).cycles).toEqual([T0 - 60_000]);
  });
});

describe('initialCopyDone', () => {
  it('is true for a primary whose replica equals it', () => {
    expect(initialCopyDone(status({ baseline: 'zero' }))).toBe(true);
    expect(initialCopyDone(status({ baseline: 'copied', senderState: 'idle' }))).toBe(true);
  });
  it('is false while the copy runs, before it, or for the wrong side', () => {
    expect(initialCopyDone(status({ baseline: 'initial-copy-required' }))).toBe(false);
    expect(initialCopyDone(status({ baseline: 'copied', senderState: 'initial-copy' }))).toBe(
      false,
    );
    expect(initialCopyDone(status({ role: 'replica' }))).toBe(false);
    expect(initialCopyDone(undefined)).toBe(false);
  });
});

describe('resyncDone', () => {
  const asked = T0 + 10_000;
  it('waits for a report newer than the request that shows the replica equal again', () => {
    // Stored before the host took the request: it still shows the replica as it was.
    expect(resyncDone(status({ baseline: 'copied', reportedAt: asked - 1 }), asked)).toBe(false);
    expect(
      resyncDone(status({ baseline: 'resync-required', reportedAt: asked + 500 }), asked),
    ).toBe(false);
    expect(
      resyncDone(
        status({ baseline: 'copied', senderState: 'resync', reportedAt: asked + 500 }),
        asked,
      ),
    ).toBe(false);
    expect(resyncDone(status({ baseline: 'copied', reportedAt: asked + 900 }), asked)).toBe(true);
  });
  it('is not done from an unreachable host or one reporting an error', () => {
    const fresh = { baseline: 'copied', reportedAt: asked + 900 };
    expect(resyncDone(status({ ...fresh, reachable: false }), asked)).toBe(false);
    expect(resyncDone(status({ ...fresh, lastError: 'SS_UNAVAILABLE: x' }), asked)).toBe(false);
    expect(resyncDone(undefined, asked)).toBe(false);
  });
});

describe('itemView', () => {
  it('prints CLI.md fields with health normal for a fresh protected item', () => {
    const i = observe(
      item({ state: 'protected', protectedSince: T0 }),
      status(),
      status({ role: 'replica', latestPoint: point('VM1-2', T0 + 20_000) }),
      T0 + 25_000,
    );
    const v = itemView(i, '30s', T0 + 30_000);
    expect(v).toMatchObject({
      vm: 'VM1',
      state: 'protected',
      health: 'normal',
      policy: 'gold',
      sourceServer: 'VMM-NewYork',
      targetServer: 'VMM-Chicago',
      sourceHost: 'ny-hv1',
      targetHost: 'chi-hv1',
      lastCycleAt: new Date(T0 + 25_000).toISOString(),
      latestRecoveryPoint: {
        id: 'VM1-2',
        time: new Date(T0 + 20_000).toISOString(),
        type: 'crash-consistent',
      },
      rpoSeconds: 10,
      errors: [],
    });
  });

  it('turns warning, then critical, as a target stays down (scaled durations)', () => {
    const scale = 0.1; // 30 s cycles become 3 s
    let i = item({ state: 'protected', protectedSince: T0, cycles: [], latestPoint: null });
    const tgtPoint = (n: number) =>
      status({ role: 'replica', latestPoint: point(`p${n}`, T0 + n * 3000) });
    for (let n = 1; n <= 4; n++) i = observe(i, status(), tgtPoint(n), T0 + n * 3000 + 100);
    expect(itemView(i, '30s', T0 + 12_500, { timeScale: scale }).health).toBe('normal');
    const down = status({
      senderState: 'backoff',
      lastError: 'SS_UNAVAILABLE: connection refused',
    });
    i = observe(i, down, status({ reachable: false }), T0 + 13_000);
    const warn = itemView(i, '30s', T0 + 22_000, { timeScale: scale });
    expect(warn.health).toBe('warning');
    expect(warn.errors.map((e) => e.code)).toContain('missed-cycles');
    const crit = itemView(i, '30s', T0 + 13_000 + 6 * 3000 + 1, { timeScale: scale });
    expect(crit.health).toBe('critical');
    expect(crit.errors.find((e) => e.code === 'replication-stopped')?.message).toMatch(
      /connection refused/,
    );
  });
});

describe('pairSettings', () => {
  it('carries the policy to the hosts, with the copy interval in seconds', () => {
    const policy = validatePolicy(
      { name: 'gold', copyFrequency: '5m', retentionHours: '4', appConsistentHours: '2' },
      T0,
    );
    expect(pairSettings(policy)).toEqual({
      compression: true,
      copyFrequencySeconds: 300,
      appConsistentHours: 2,
      retentionHours: 4,
    });
    expect(pairSettings(policy, 0.01).copyFrequencySeconds).toBe(3);
  });
});

describe('churnAttribution', () => {
  const m = (bucketMs?: number) => ({
    windowMinutes: 30,
    ...(bucketMs === undefined ? {} : { bucketMs }),
    disks: [{ index: 0, avgBytesPerHour: 100, peakHourBytes: 600, bytes: 300 }],
    hotRegions: [],
  });
  it('tells a production host’s figures as they came', () => {
    expect(churnAttribution(m())).toMatchObject({ windowMinutes: 30, peakBytesPerHour: 600 });
  });
  it('rates a development host’s 60-bucket peak per hour and its window in minutes', () => {
    // 2 s buckets: 30 buckets = 1 minute; the peak of 60 buckets (2 minutes) × 30 per hour.
    expect(churnAttribution(m(2_000))).toMatchObject({
      windowMinutes: 1,
      avgBytesPerHour: 100,
      peakBytesPerHour: 18_000,
      disks: [{ disk: 0, peakBytesPerHour: 18_000, share: 1 }],
    });
  });
});
