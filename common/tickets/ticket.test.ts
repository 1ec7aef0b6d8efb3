/** Ticket lifetimes, renewal, and the replay file across restarts. */
import { mkdtempSync, rmSync, appendFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SecondsiteError } from '../errors/errors.ts';
import { generateLongTermKey } from './crypto.ts';
import { ReplayCache, replayDigest } from './replay-cache.ts';
import { ReplayFileStore, createReplayFile } from './replay-file.ts';
import { TICKET_LIFETIME, issueTicket, openTicket, renewTicket } from './ticket.ts';

const C = 'secondsite://v1/host/hv-a';
const S = 'secondsite://v1/host/hv-b';
const H = 3_600_000;
const key = generateLongTermKey(3);
const keyFor = (v: number): Buffer | undefined => (v === 3 ? key.key : undefined);

describe('tickets', () => {
  it('last 10 h by default and never more than a day', () => {
    const t = issueTicket({ client: C, server: S, serverKey: key, now: 0 });
    expect(t.endTime).toBe(10 * H);
    const long = issueTicket({ client: C, server: S, serverKey: key, now: 0, lifetimeMs: 99 * H });
    expect(long.endTime).toBe(TICKET_LIFETIME.maxMs);
    const opened = openTicket(long.ticket, S, keyFor);
    expect([opened.client, opened.keyVersion, opened.endTime]).toEqual([C, 3, 24 * H]);
  });

  it('renew with the same session key until at most 7 days after issue', () => {
    const t = issueTicket({
      client: C,
      server: S,
      serverKey: key,
      now: 0,
      renewTill: 30 * 24 * H,
    });
    expect(openTicket(t.ticket, S, keyFor).renewTill).toBe(7 * 24 * H);
    const r = renewTicket(t.ticket, key, 9 * H);
    expect(r.sessionKey.equals(t.sessionKey)).toBe(true);
    expect(r.endTime).toBe(19 * H);
    // Renewing every 9 h: the end never passes 7 days after issue, then renewal stops.
    let cur = r;
    let now = 9 * H;
    for (;;) {
      now += 9 * H;
      if (now >= 7 * 24 * H) break;
      cur = renewTicket(cur.ticket, key, now);
      expect(cur.endTime).toBeLessThanOrEqual(7 * 24 * H);
    }
    expect(cur.endTime).toBe(7 * 24 * H);
    expect(() => renewTicket(cur.ticket, key, 7 * 24 * H)).toThrow(SecondsiteError);
    const plain = issueTicket({ client: C, server: S, serverKey: key, now: 0 });
    expect(() => renewTicket(plain.ticket, key, H)).toThrow(/cannot be renewed/);
  });
});

describe('replay file', () => {
  it('keeps accepted authenticators across a restart, drops a torn record, distrusts a lost file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ss-replay-'));
    try {
      const path = join(dir, 'replay');
      createReplayFile(path);
      const d = replayDigest(C, S, 1_000_000, 7);
      new ReplayCache(new ReplayFileStore(path), 1_000).admit(d, 1_000, 1_000);
      appendFileSync(path, Buffer.alloc(17, 9)); // a crash mid-append
      const restarted = new ReplayCache(new ReplayFileStore(path), 2_000);
      expect(() => restarted.admit(d, 1_000, 2_000)).toThrow(/already presented/);
      restarted.admit(replayDigest(C, S, 2_000_000, 8), 2_000, 2_000);
      writeFileSync(path, 'garbage');
      const lost = new ReplayCache(new ReplayFileStore(path), 3_000);
      expect(lost.warming(3_000)).toBe(true);
      expect(lost.warming(3_000 + 5 * 60_000)).toBe(false);
      const missing = new ReplayCache(new ReplayFileStore(join(dir, 'none')), 0);
      expect(missing.warming(0)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
