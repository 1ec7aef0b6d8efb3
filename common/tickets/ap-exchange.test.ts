/**
 * The AP exchange of 8083 against every negative case of issue #7, with an injected clock:
 * each refusal is checked for its code and its reason (which check fired), and the order of
 * the checks is pinned where two failures meet.
 */
import { describe, expect, it } from 'vitest';
import { isSecondsiteError, type SecondsiteError } from '../errors/errors.ts';
import { FakeClock } from '../time/clock.ts';
import {
  buildApReply,
  buildApRequest,
  checkApReply,
  checkApRequest,
  deriveChannelKeys,
  microClock,
  type ServerContext,
} from './ap-exchange.ts';
import { generateLongTermKey, type LongTermKey } from './crypto.ts';
import { codecs, type ApRequestMsg } from './messages.ts';
import { MemoryReplayStore, ReplayCache } from './replay-cache.ts';
import { issueTicket, type ClientCredentials } from './ticket.ts';

const CLIENT = 'secondsite://v1/host/hv-a';
const SERVER = 'secondsite://v1/host/hv-b';
const OTHER = 'secondsite://v1/host/hv-c';
const MIN = 60_000;
const SEC = 1_000;

function refusal(fn: () => unknown): SecondsiteError {
  try {
    fn();
  } catch (e) {
    if (isSecondsiteError(e)) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

function flip(b: Buffer, at = Math.floor(b.length / 2)): Buffer {
  const c = Buffer.from(b);
  c[at]! ^= 0x01;
  return c;
}

interface Lab {
  clock: FakeClock;
  key: LongTermKey;
  store: MemoryReplayStore;
  ctx: (over?: Partial<ServerContext>) => ServerContext;
  creds: ClientCredentials;
  request: (creds?: ClientCredentials, atMs?: number) => ReturnType<typeof buildApRequest>;
}

function lab(): Lab {
  const clock = new FakeClock();
  const key = generateLongTermKey(1);
  const store = new MemoryReplayStore();
  const replay = new ReplayCache(store, clock.now());
  const us = microClock(() => clock.now());
  const creds = issueTicket({ client: CLIENT, server: SERVER, serverKey: key, now: clock.now() });
  return {
    clock,
    key,
    store,
    creds,
    ctx: (over = {}) => ({
      self: SERVER,
      keyFor: (v) => (v === key.version ? key.key : undefined),
      replay,
      now: clock.now(),
      ...over,
    }),
    request: (c = creds, atMs) => buildApRequest(c, atMs === undefined ? us() : atMs * 1000),
  };
}

describe('AP exchange', () => {
  it('accepts a good request, proves the session key, and both ends derive the same keys', () => {
    const l = lab();
    const { request, stamp } = l.request();
    const reqFrame = codecs.handshake().encode({ step: 'apRequest', apRequest: request });
    const accepted = checkApRequest(request, l.ctx());
    expect(accepted.client).toBe(CLIENT);
    expect(accepted.sessionKey.equals(l.creds.sessionKey)).toBe(true);
    const { reply, serverRandom } = buildApReply(accepted, reqFrame);
    const repFrame = codecs.handshake().encode({ step: 'apReply', apReply: reply });
    const got = checkApReply(reply, l.creds.sessionKey, reqFrame, stamp);
    expect(got.equals(serverRandom)).toBe(true);
    const client = deriveChannelKeys(
      l.creds.sessionKey,
      reqFrame,
      repFrame,
      stamp.clientRandom,
      got,
    );
    const server = deriveChannelKeys(
      accepted.sessionKey,
      reqFrame,
      repFrame,
      accepted.stamp.clientRandom,
      serverRandom,
    );
    expect(client.clientToServer.equals(server.clientToServer)).toBe(true);
    expect(client.serverToClient.equals(server.serverToClient)).toBe(true);
    expect(client.clientToServer.equals(client.serverToClient)).toBe(false);
  });

  it('refuses a flipped byte anywhere in the ticket', () => {
    const l = lab();
    const { request } = l.request();
    const t = request.ticket!;
    for (const at of [0, 12, t.sealedBody.length - 1]) {
      const bad = { ...request, ticket: { ...t, sealedBody: flip(t.sealedBody, at) } };
      expect(refusal(() => checkApRequest(bad, l.ctx())).details).toEqual({
        reason: 'ticket-integrity',
      });
    }
    // The clear header is bound too: another key version, another server name.
    const v2 = { ...request, ticket: { ...t, keyVersion: 2 } };
    expect(refusal(() => checkApRequest(v2, l.ctx())).details.reason).toBe('key-version');
    const swapped = { ...request, ticket: { ...t, keyVersion: 2 } };
    const both = refusal(() =>
      checkApRequest(swapped, l.ctx({ keyFor: () => l.key.key /* any version → same key */ })),
    );
    expect(both.details.reason).toBe('ticket-integrity');
  });

  it('refuses a flipped byte in the authenticator', () => {
    const l = lab();
    const { request } = l.request();
    const bad = { ...request, sealedAuthenticator: flip(request.sealedAuthenticator) };
    const e = refusal(() => checkApRequest(bad, l.ctx()));
    expect([e.code, e.details.reason]).toEqual(['SS_TICKET_INVALID', 'authenticator-integrity']);
  });

  it("refuses an authenticator moved onto another ticket of the same client's", () => {
    const l = lab();
    const other = issueTicket({ client: CLIENT, server: SERVER, serverKey: l.key, now: 0 });
    const { request } = l.request();
    const moved: ApRequestMsg = { ...request, ticket: other.ticket };
    expect(refusal(() => checkApRequest(moved, l.ctx())).details.reason).toBe(
      'authenticator-integrity',
    );
  });

  it('refuses a flipped byte in the server reply, and a forged or replayed reply', () => {
    const l = lab();
    const { request, stamp } = l.request();
    const reqFrame = codecs.handshake().encode({ step: 'apRequest', apRequest: request });
    const accepted = checkApRequest(request, l.ctx());
    const { reply } = buildApReply(accepted, reqFrame);
    const flipped = { sealedBody: flip(reply.sealedBody) };
    expect(
      refusal(() => checkApReply(flipped, l.creds.sessionKey, reqFrame, stamp)).details.reason,
    ).toBe('reply-integrity');
    // Forged: a server without the long-term key cannot know the session key; it seals under
    // one of its own.
    const forger = { ...accepted, sessionKey: Buffer.alloc(32, 7) };
    const forged = buildApReply(forger, reqFrame).reply;
    expect(
      refusal(() => checkApReply(forged, l.creds.sessionKey, reqFrame, stamp)).details.reason,
    ).toBe('reply-integrity');
    // An authentic reply to an earlier request does not answer this one.
    const next = l.request();
    const nextFrame = codecs.handshake().encode({ step: 'apRequest', apRequest: next.request });
    expect(
      refusal(() => checkApReply(reply, l.creds.sessionKey, nextFrame, next.stamp)).details.reason,
    ).toBe('reply-integrity');
    // The authenticator reflected back as a reply fails too (another label).
    const reflected = { sealedBody: request.sealedAuthenticator };
    expect(
      refusal(() => checkApReply(reflected, l.creds.sessionKey, reqFrame, stamp)).details.reason,
    ).toBe('reply-integrity');
  });

  it('refuses the same authenticator replayed to the same server', () => {
    const l = lab();
    const { request } = l.request();
    checkApRequest(request, l.ctx());
    l.clock.advance(SEC);
    const e = refusal(() => checkApRequest(request, l.ctx({ now: l.clock.now() })));
    expect([e.code, e.details.reason]).toEqual(['SS_REPLAY', 'replay']);
  });

  it('refuses it replayed to a second server: another host, or another listener of this host', () => {
    const l = lab();
    const { request } = l.request();
    checkApRequest(request, l.ctx());
    // Another host has another key and identity: the ticket is not for it.
    const otherKey = generateLongTermKey(1);
    const e = refusal(() =>
      checkApRequest(request, {
        self: OTHER,
        keyFor: () => otherKey.key,
        replay: new ReplayCache(new MemoryReplayStore(), l.clock.now()),
        now: l.clock.now(),
      }),
    );
    expect([e.code, e.details.reason]).toEqual(['SS_TICKET_INVALID', 'wrong-service']);
    // A second listener of the same host (another address) shares the host's replay cache.
    const e2 = refusal(() => checkApRequest(request, l.ctx()));
    expect(e2.code).toBe('SS_REPLAY');
  });

  it('refuses a replay after a restart within 5 minutes, whether the cache persisted or was lost', () => {
    const l = lab();
    const { request } = l.request();
    checkApRequest(request, l.ctx());
    l.clock.advance(2 * MIN);
    // Restart with the persisted cache: the replay is refused, fresh authenticators pass.
    const restarted = new ReplayCache(l.store, l.clock.now());
    const e = refusal(() =>
      checkApRequest(request, l.ctx({ replay: restarted, now: l.clock.now() })),
    );
    expect([e.code, e.details.reason]).toEqual(['SS_REPLAY', 'replay']);
    checkApRequest(l.request().request, l.ctx({ replay: restarted, now: l.clock.now() }));
    // Restart with the cache lost: every ticket is refused for 5 minutes, then accepted.
    const lost = new ReplayCache(MemoryReplayStore.lost(), l.clock.now());
    const e2 = refusal(() => checkApRequest(request, l.ctx({ replay: lost, now: l.clock.now() })));
    expect([e2.code, e2.details.reason]).toEqual(['SS_REPLAY', 'replay-cache-warming']);
    const fresh = l.request().request;
    expect(
      refusal(() => checkApRequest(fresh, l.ctx({ replay: lost, now: l.clock.now() }))).code,
    ).toBe('SS_REPLAY');
    l.clock.advance(5 * MIN + 1);
    const later = l.request().request;
    expect(checkApRequest(later, l.ctx({ replay: lost, now: l.clock.now() })).client).toBe(CLIENT);
  });

  it.each([
    ['+5:01', 5 * MIN + SEC, 'SS_CLOCK_SKEW'],
    ['-5:01', -(5 * MIN + SEC), 'SS_CLOCK_SKEW'],
    ['+4:59', 5 * MIN - SEC, undefined],
    ['-4:59', -(5 * MIN - SEC), undefined],
  ])('client clock %s from the server: %s', (_name, offset, code) => {
    const l = lab();
    const { request } = l.request(l.creds, l.clock.now() + offset);
    if (code === undefined) expect(checkApRequest(request, l.ctx()).client).toBe(CLIENT);
    else expect(refusal(() => checkApRequest(request, l.ctx())).code).toBe(code);
  });

  it('refuses an expired ticket and a ticket not valid yet (beyond the 5-minute allowance)', () => {
    const l = lab();
    const short = issueTicket({
      client: CLIENT,
      server: SERVER,
      serverKey: l.key,
      now: l.clock.now(),
      lifetimeMs: 60 * MIN,
    });
    l.clock.advance(60 * MIN + 5 * MIN + SEC);
    const e = refusal(() => checkApRequest(l.request(short).request, l.ctx()));
    expect([e.code, e.details.reason]).toEqual(['SS_TICKET_EXPIRED', 'expired']);
    const postdated = issueTicket({
      client: CLIENT,
      server: SERVER,
      serverKey: l.key,
      now: l.clock.now(),
      startTime: l.clock.now() + 5 * MIN + SEC,
    });
    const e2 = refusal(() => checkApRequest(l.request(postdated).request, l.ctx()));
    expect([e2.code, e2.details.reason]).toEqual(['SS_TICKET_EXPIRED', 'not-yet-valid']);
  });

  it('refuses a ticket for another service', () => {
    const l = lab();
    const otherKey = generateLongTermKey(1);
    const forC = issueTicket({ client: CLIENT, server: OTHER, serverKey: otherKey, now: 0 });
    const e = refusal(() => checkApRequest(l.request(forC).request, l.ctx()));
    expect([e.code, e.details.reason]).toEqual(['SS_TICKET_INVALID', 'wrong-service']);
    // Even sealed under this server's own key, a ticket naming another server is refused.
    const misnamed = issueTicket({ client: CLIENT, server: OTHER, serverKey: l.key, now: 0 });
    const relabelled = { ...misnamed.ticket, server: SERVER };
    const e2 = refusal(() =>
      checkApRequest(l.request({ ...misnamed, ticket: relabelled }).request, l.ctx()),
    );
    expect(e2.details.reason).toBe('ticket-integrity');
  });

  it('refuses an authenticator naming another client than the ticket', () => {
    const l = lab();
    const e = refusal(() =>
      checkApRequest(l.request({ ...l.creds, client: OTHER }).request, l.ctx()),
    );
    expect([e.code, e.details.reason]).toEqual(['SS_TICKET_INVALID', 'client-mismatch']);
  });

  it('checks in the issue order where failures meet', () => {
    const l = lab();
    const expired = issueTicket({
      client: CLIENT,
      server: SERVER,
      serverKey: l.key,
      now: l.clock.now() - 2 * 24 * 60 * MIN,
      lifetimeMs: MIN,
    });
    // authenticator integrity (3) before expiry (8)
    const r = l.request(expired).request;
    const bad = { ...r, sealedAuthenticator: flip(r.sealedAuthenticator) };
    expect(refusal(() => checkApRequest(bad, l.ctx())).details.reason).toBe(
      'authenticator-integrity',
    );
    // client mismatch (4) before skew (5)
    const skewed = l.request({ ...l.creds, client: OTHER }, l.clock.now() + 10 * MIN).request;
    expect(refusal(() => checkApRequest(skewed, l.ctx())).details.reason).toBe('client-mismatch');
    // skew (5) before replay (6): an old accepted authenticator, 6 minutes later
    const good = l.request().request;
    checkApRequest(good, l.ctx());
    l.clock.advance(6 * MIN);
    expect(refusal(() => checkApRequest(good, l.ctx({ now: l.clock.now() }))).code).toBe(
      'SS_CLOCK_SKEW',
    );
    // replay (6) before expiry (8)
    const once = l.request(expired).request;
    expect(refusal(() => checkApRequest(once, l.ctx({ now: l.clock.now() }))).code).toBe(
      'SS_TICKET_EXPIRED',
    );
    expect(refusal(() => checkApRequest(once, l.ctx({ now: l.clock.now() }))).code).toBe(
      'SS_REPLAY',
    );
  });

  it('gives authenticator times that never repeat within a millisecond', () => {
    const clock = new FakeClock();
    const us = microClock(() => clock.now());
    const a = us();
    const b = us();
    expect(b).toBeGreaterThan(a);
    expect(Math.floor(a / 1000)).toBe(clock.now());
  });
});
