import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log/log.ts';
import { systemClock } from '../../common/time/clock.ts';
import { openMemoryStore } from '../store/level-store.ts';
import { ProtectionService, WATCH_INTERVAL_MS, type ProtectionDeps } from './protection-service.ts';

describe('the item watcher', () => {
  it('leaves at most one abort listener on its signal, however many rounds it ran', async () => {
    const deps = {
      store: await openMemoryStore(),
      clock: systemClock,
      log: silentLogger,
      vaults: { list: async () => [] }, // no vault: every round is empty
    } as unknown as ProtectionDeps;
    const running = new AbortController();
    const watching = new ProtectionService(deps).watch(running.signal);
    await new Promise((r) => setTimeout(r, 2 * WATCH_INTERVAL_MS + 300)); // three rounds
    expect(getEventListeners(running.signal, 'abort').length).toBeLessThanOrEqual(1);
    running.abort();
    await watching; // stops at once when asked
  });
});
