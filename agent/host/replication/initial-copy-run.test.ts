import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { silentLogger } from '../../../common/log/log.ts';
import type { SealedSegment, VmJournal } from '../journal/types.ts';
import type { InitialCopyOptions, SyncClient } from '../transport/replication-client.ts';
import { runPrimaryInitialCopy, type RunCopyInput } from './initial-copy-run.ts';
import type { Pairing } from './pairing.ts';

const PAIRING: Pairing = {
  schemaVersion: 1,
  role: 'primary',
  peerHost: 'hv-b',
  peerAddress: '127.0.0.1:1',
  vault: 'v1',
  epoch: 1,
  compression: true,
  baseline: 'initial-copy-required',
};

/** A journal whose cuts seal segments 1, 2, …; markShipped drops sealed segments. */
function fakeJournal(): VmJournal & { cuts: number; shipped: number[] } {
  let sealed: SealedSegment[] = [];
  let next = 1;
  const j = {
    cuts: 0,
    shipped: [] as number[],
    state: 'journaling',
    sealedSegments: () => [...sealed],
    shippableSegments: () => [...sealed],
    cut: async () => {
      j.cuts++;
      const seq = next++;
      const point = { id: `p${seq}`, time: 0, type: 'crash-consistent', segment: seq };
      sealed.push({ seq, path: `/nonexistent/${seq}`, bytes: 1, point } as SealedSegment);
      return point;
    },
    markShipped: async (seq: number) => {
      j.shipped.push(seq);
      sealed = sealed.filter((s) => s.seq > seq);
    },
  };
  return j as unknown as VmJournal & { cuts: number; shipped: number[] };
}

/** A SyncClient whose copies fail `failures` times, then succeed; records every call. */
function fakeClient(failures: number): SyncClient & { calls: InitialCopyOptions[] } {
  const calls: InitialCopyOptions[] = [];
  return {
    calls,
    initialCopy: async (o) => {
      calls.push(o);
      if (calls.length <= failures) throw new SecondsiteError('SS_UNAVAILABLE', 'broken');
      o.onProgress?.({ bytesDone: 8, bytesTotal: 8 });
      const base = o.baseSeq!;
      return {
        baseSeq: base,
        from: { disk: 0, offset: 0 },
        payloadBytes: 0,
        dataBytes: 8,
        zeroBytes: 0,
      };
    },
    resyncPeer: () => {
      throw new Error('unused');
    },
  };
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ic-run-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function input(journal: VmJournal, pairing = PAIRING): RunCopyInput {
  return {
    vm: 'vm1',
    pairing,
    journal,
    log: silentLogger,
    signal: new AbortController().signal,
    onProgress: () => undefined,
  };
}

describe('runPrimaryInitialCopy', () => {
  it('persists {copyId, baseSeq} before copying and resumes the same copy after a break', async () => {
    const journal = fakeJournal();
    const client = fakeClient(1);
    const baselines: string[] = [];
    const o = {
      client,
      diskSizes: [8],
      stateDir: dir,
      setBaseline: async (b: string) => void baselines.push(b),
    };
    await expect(runPrimaryInitialCopy(o, input(journal))).rejects.toMatchObject({
      code: 'SS_UNAVAILABLE',
    });
    expect(existsSync(join(dir, 'initial-copy.json'))).toBe(true);
    expect(baselines).toEqual([]);
    expect(await runPrimaryInitialCopy(o, input(journal))).toBe(1);
    expect(journal.cuts).toBe(1);
    const [first, second] = client.calls;
    expect(second!.copyId).toBe(first!.copyId);
    expect([first!.baseSeq, second!.baseSeq]).toEqual([1, 1]);
    expect(second!.compress).toBe(true);
    expect(journal.shipped).toEqual([1]);
    expect(baselines).toEqual(['copied']);
    expect(existsSync(join(dir, 'initial-copy.json'))).toBe(false);
  });

  it('begins a new copy when the epoch changed or the journal lost the base', async () => {
    const journal = fakeJournal();
    const client = fakeClient(2);
    const o = { client, diskSizes: [8], stateDir: dir, setBaseline: async () => undefined };
    await expect(runPrimaryInitialCopy(o, input(journal))).rejects.toThrow();
    const epoch2 = { ...PAIRING, epoch: 2 };
    await expect(runPrimaryInitialCopy(o, input(journal, epoch2))).rejects.toThrow();
    await journal.markShipped(2); // the base of the second copy is gone
    expect(await runPrimaryInitialCopy(o, input(journal, epoch2))).toBe(3);
    const ids = new Set(client.calls.map((c) => c.copyId));
    expect(ids.size).toBe(3);
    expect(client.calls.map((c) => c.epoch)).toEqual([1, 2, 2]);
  });
});
