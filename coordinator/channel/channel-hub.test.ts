import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log/log.ts';
import { FakeClock } from '../../common/time/clock.ts';
import type { AgentEnvelope } from '../../common/wire/agent-channel-messages.ts';
import { serverState } from '../domain/server.ts';
import { ChannelHub, type ChannelSession } from './channel-hub.ts';

function session(
  name = 'vmm-newyork',
): ChannelSession & { sent: AgentEnvelope[]; closed: number[] } {
  const sent: AgentEnvelope[] = [];
  const closed: number[] = [];
  return {
    vaultId: 'v-1',
    identityName: name,
    sent,
    closed,
    send: (e) => void sent.push(e),
    close: (code) => void closed.push(code),
  };
}

const CMD = { syncCloud: { cloud: 'GoldCloud1' } };

describe('channel hub', () => {
  it('turns a silent provider disconnected after three missed heartbeats', () => {
    const clock = new FakeClock();
    const hub = new ChannelHub(100, clock, silentLogger);
    const s = session();
    hub.attach(s);
    const state = (): string => {
      const l = hub.liveness('v-1', 'vmm-newyork');
      return serverState({
        channelOpen: l.open,
        lastHeartbeatAt: l.lastHeartbeatAt,
        heartbeatMs: 100,
        now: clock.now(),
      });
    };
    clock.advance(250);
    hub.heartbeat(s);
    clock.advance(300);
    expect(state()).toBe('connected');
    clock.advance(1);
    expect(state()).toBe('disconnected');
    hub.detach(s);
    expect(hub.liveness('v-1', 'vmm-newyork').open).toBe(false);
  });

  it('resends a pending command to the next connection and resolves it once', async () => {
    const hub = new ChannelHub(100, new FakeClock(), silentLogger);
    const first = session();
    hub.attach(first);
    const stop = new AbortController();
    const result = hub.sendCommand({
      vaultId: 'v-1',
      identityName: 'vmm-newyork',
      commandId: 'j-1.fetch-cloud',
      command: CMD,
      timeoutMs: 60_000,
      signal: stop.signal,
    });
    expect(first.sent).toEqual([{ commandId: 'j-1.fetch-cloud', command: CMD }]);
    const second = session();
    hub.attach(second); // a reconnect replaces the old connection and gets the command again
    expect(first.closed).toEqual([4000]);
    expect(second.sent).toEqual([{ commandId: 'j-1.fetch-cloud', command: CMD }]);
    // A result from the old connection or for another server is ignored.
    hub.onResult(session('vmm-chicago'), 'j-1.fetch-cloud', { result: 'cloud' });
    const cloud = { name: 'GoldCloud1', hostGroups: [], logicalNetworks: [], vmNetworks: [] };
    hub.onResult(second, 'j-1.fetch-cloud', { result: 'cloud', cloud });
    hub.onResult(second, 'j-1.fetch-cloud', { result: 'cloud' }); // a late duplicate: no effect
    await expect(result).resolves.toEqual({ result: 'cloud', cloud });
  });

  it('fails a command with SS_UNAVAILABLE when no answer comes in time', async () => {
    const hub = new ChannelHub(100, new FakeClock(), silentLogger);
    await expect(
      hub.sendCommand({
        vaultId: 'v-1',
        identityName: 'vmm-newyork',
        commandId: 'j-2.fetch-cloud',
        command: CMD,
        timeoutMs: 10,
        signal: new AbortController().signal,
      }),
    ).rejects.toMatchObject({ code: 'SS_UNAVAILABLE' });
  });
});
