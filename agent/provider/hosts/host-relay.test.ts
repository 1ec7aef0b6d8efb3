import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../common/log/log.ts';
import type { HostCommand, ProviderFrame } from '../../../common/wire/host-control-messages.ts';
import { HostRelay, type RelaySession } from './host-relay.ts';

function session(): RelaySession & { sent: string[] } {
  const s = {
    sent: [] as string[],
    send: (f: ProviderFrame) => void s.sent.push('command' in f ? f.command.commandId : '?'),
  };
  return s;
}

const pause = (id: string): HostCommand => ({
  commandId: id,
  kind: 'pauseVm',
  pauseVm: { name: 'vm1', paused: true },
});

function relayWith(sessions: Map<string, RelaySession>, waitMs = 60_000, answerMs = 60_000) {
  return new HostRelay({ session: (h) => sessions.get(h), log: silentLogger, waitMs, answerMs });
}

describe('HostRelay', () => {
  it('sends on the current session and resolves with the answer of that host only', async () => {
    const s = session();
    const relay = relayWith(new Map([['h1', s]]));
    const answer = relay.send('h1', pause('c1'));
    expect(s.sent).toEqual(['c1']);
    expect(relay.answered('h2', { commandId: 'c1', error: null })).toBe(false);
    expect(relay.answered('h1', { commandId: 'c1', error: null })).toBe(true);
    await expect(answer).resolves.toEqual({ commandId: 'c1', error: null });
    expect(relay.inFlight()).toBe(0);
    // Not a relayed id (e.g. a create of the site reconcile): left to the registry.
    expect(relay.answered('h1', { commandId: 'site/h1/x/create', error: null })).toBe(false);
  });

  it('waits for a host to connect, and sends again on the next session after a break', async () => {
    const sessions = new Map<string, RelaySession>();
    const relay = relayWith(sessions);
    const answer = relay.send('h1', pause('c1'));
    const first = session();
    sessions.set('h1', first);
    relay.attached('h1', first);
    expect(first.sent).toEqual(['c1']);
    relay.detached('h1', first);
    const second = session();
    relay.attached('h1', second);
    expect(second.sent).toEqual(['c1']); // the same id: the host answers a resend once
    relay.answered('h1', { commandId: 'c1', error: null });
    await expect(answer).resolves.toMatchObject({ commandId: 'c1' });
  });

  it('joins a resend of an id in flight instead of sending it twice', async () => {
    const s = session();
    const relay = relayWith(new Map([['h1', s]]));
    const one = relay.send('h1', pause('c1'));
    const two = relay.send('h1', pause('c1'));
    expect(s.sent).toEqual(['c1']);
    relay.answered('h1', { commandId: 'c1', error: null });
    expect(await one).toBe(await two);
  });

  it('gives up on a host that does not connect with SS_UNAVAILABLE naming it', async () => {
    const relay = relayWith(new Map(), 20);
    await expect(relay.send('ny-hv9', pause('c1'))).rejects.toMatchObject({
      code: 'SS_UNAVAILABLE',
      message: expect.stringContaining('ny-hv9'),
    });
    expect(relay.inFlight()).toBe(0);
  });

  it('gives up on a connected host that does not answer with SS_TIMEOUT', async () => {
    const relay = relayWith(new Map([['h1', session()]]), 60_000, 20);
    await expect(relay.send('h1', pause('c1'))).rejects.toMatchObject({ code: 'SS_TIMEOUT' });
  });

  it('fails what is in flight when the provider stops', async () => {
    const relay = relayWith(new Map());
    const waiting = relay.send('h1', pause('c1'));
    relay.close();
    await expect(waiting).rejects.toMatchObject({ code: 'SS_UNAVAILABLE' });
    expect(relay.inFlight()).toBe(0);
  });
});
