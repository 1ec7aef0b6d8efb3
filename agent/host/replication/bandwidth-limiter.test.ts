import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../common/log/log.ts';
import { systemClock } from '../../../common/time/clock.ts';
import { HostBandwidth } from './bandwidth-limiter.ts';

describe('HostBandwidth', () => {
  it('leaves no abort listener behind once a paced chunk was granted', async () => {
    // A cap that binds (every acquire queues) but grants at once: 1 GB/s with a second of burst.
    const bw = new HostBandwidth(
      { clock: systemClock, log: silentLogger },
      { limit: 1_000_000_000, windows: [], priorities: {} },
    );
    const sender = new AbortController();
    const pace = bw.pacer('vm1', sender.signal);
    try {
      for (let i = 0; i < 50; i++) await pace(64 * 1024);
      expect(getEventListeners(sender.signal, 'abort')).toHaveLength(0);
    } finally {
      bw.close();
    }
  });

  it('still rejects a waiter whose signal aborts', async () => {
    const bw = new HostBandwidth(
      { clock: systemClock, log: silentLogger },
      { limit: 1, windows: [], priorities: {} }, // 1 byte/s: a 1 MB chunk waits
    );
    const sender = new AbortController();
    try {
      const pace = bw.pacer('vm1', sender.signal);
      await pace(1_000_000); // a full bucket lends its burst to the first chunk
      const waiting = pace(1_000_000); // the next waits for ~a million seconds
      sender.abort(new Error('stopped'));
      await expect(waiting).rejects.toThrow('stopped');
      expect(getEventListeners(sender.signal, 'abort')).toHaveLength(0);
    } finally {
      bw.close();
    }
  });
});
