import { describe, expect, it } from 'vitest';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { silentLogger } from '../../../common/log/log.ts';
import { FakeClock } from '../../../common/time/clock.ts';
import type { SealedSegment, VmJournal } from '../journal/types.ts';
import type { ReplicationClient, ShipStream } from '../transport/replication-client.ts';
import type { Pairing } from './pairing.ts';
import { VmSender } from './sender.ts';

const PAIRING: Pairing = {
  schemaVersion: 1,
  role: 'primary',
  peerHost: 'hv-b',
  peerAddress: '127.0.0.1:1',
  vault: 'v1',
  epoch: 1,
  compression: false,
  baseline: 'zero',
};

/** A journal with sealed segments `seqs` whose files are never read (shipping is faked). */
function fakeJournal(seqs: number[]): VmJournal & { shipped: number[] } {
  let sealed: SealedSegment[] = seqs.map((seq) => ({
    seq,
    path: `/nonexistent/${seq}`,
    bytes: 1,
    point: { id: `p${seq}`, time: 0, type: 'crash-consistent', segment: seq },
  }));
  const shipped: number[] = [];
  return {
    shipped,
    state: 'journaling',
    sealedSegments: () => [...sealed],
    shippableSegments: () => [...sealed],
    markShipped: async (seq: number) => {
      shipped.push(seq);
      sealed = sealed.filter((s) => s.seq > seq);
    },
  } as unknown as VmJournal & { shipped: number[] };
}

function fakeClient(open: () => Promise<Partial<ShipStream>>): ReplicationClient {
  return {
    openShipStream: async () => (await open()) as ShipStream,
    status: () => Promise.reject(new Error('unused')),
    close: () => undefined,
  };
}

async function until(p: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !p(); i++) await new Promise((r) => setTimeout(r, 5));
}

function sender(journal: VmJournal, client: ReplicationClient, pairing = PAIRING): VmSender {
  return new VmSender({
    vm: 'vm1',
    pairing,
    journal: () => journal,
    client,
    clock: new FakeClock(),
    log: silentLogger,
    random: () => 0,
    pollMs: 5,
  });
}

describe('VmSender', () => {
  it('marks what the replica already has as shipped, and stops on a gap', async () => {
    const j = fakeJournal([3, 4, 6]);
    const s = sender(
      j,
      fakeClient(async () => ({ lastApplied: 4, state: 'open', cancel() {} })),
    );
    const ac = new AbortController();
    const done = s.run(ac.signal);
    await until(() => s.status.state === 'stopped');
    expect(j.shipped).toEqual([4]);
    expect(s.status.lastError).toMatch(/^SS_RESYNC_REQUIRED: .*segment 4 .* continues at 6/);
    ac.abort();
    await done;
  });

  it('marks a segment the replica applied while its seal was still finishing here', async () => {
    const j = fakeJournal([3]);
    // Segment 3 is shippable (its SEAL durable) but not yet in the sealed list.
    (j as { sealedSegments: () => SealedSegment[] }).sealedSegments = () => [];
    const s = sender(
      j,
      fakeClient(async () => ({ lastApplied: 3, state: 'open', cancel() {} })),
    );
    const ac = new AbortController();
    const done = s.run(ac.signal);
    await until(() => j.shipped.length > 0);
    expect(j.shipped).toEqual([3]);
    ac.abort();
    await done;
  });

  it('refuses a journal that does not start at segment 1 for an empty replica', async () => {
    const s = sender(
      fakeJournal([2]),
      fakeClient(async () => ({ lastApplied: 0, state: 'open', cancel() {} })),
    );
    const ac = new AbortController();
    const done = s.run(ac.signal);
    await until(() => s.status.state === 'stopped');
    expect(s.status.lastError).toMatch(/initial copy/);
    ac.abort();
    await done;
  });

  it('backs off after a transient failure and stops on SS_NOT_PAIRED', async () => {
    let calls = 0;
    const s = sender(
      fakeJournal([]),
      fakeClient(async () => {
        calls++;
        throw new SecondsiteError(calls < 2 ? 'SS_UNAVAILABLE' : 'SS_NOT_PAIRED', `try ${calls}`);
      }),
    );
    const ac = new AbortController();
    const done = s.run(ac.signal);
    await until(() => s.status.state === 'backoff');
    expect(s.status.lastError).toBe('SS_UNAVAILABLE: try 1');
    await until(() => s.status.state === 'stopped');
    expect(s.status.lastError).toBe('SS_NOT_PAIRED: try 2');
    ac.abort();
    await done;
    expect(calls).toBe(2);
  });

  it('never ships while an initial copy is required', async () => {
    let opened = false;
    const s = sender(
      fakeJournal([1]),
      fakeClient(async () => {
        opened = true;
        return { lastApplied: 0, state: 'open', cancel() {} };
      }),
      { ...PAIRING, baseline: 'initial-copy-required' },
    );
    const ac = new AbortController();
    const done = s.run(ac.signal);
    await until(() => s.status.state === 'stopped');
    expect(opened).toBe(false);
    ac.abort();
    await done;
  });
});
