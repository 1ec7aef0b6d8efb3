import { describe, expect, it } from 'vitest';
import { identityNameOf, serverState } from './server.ts';

describe('server state', () => {
  const base = { heartbeatMs: 1000, now: 10_000 };
  it('is connected while the channel is open and heartbeats arrive', () => {
    expect(serverState({ ...base, channelOpen: true, lastHeartbeatAt: 9_000 })).toBe('connected');
    expect(serverState({ ...base, channelOpen: true, lastHeartbeatAt: 7_000 })).toBe('connected');
  });
  it('is disconnected after three missed heartbeats, or without a channel', () => {
    expect(serverState({ ...base, channelOpen: true, lastHeartbeatAt: 6_999 })).toBe(
      'disconnected',
    );
    expect(serverState({ ...base, channelOpen: false, lastHeartbeatAt: 9_999 })).toBe(
      'disconnected',
    );
    expect(serverState({ ...base, channelOpen: true, lastHeartbeatAt: undefined })).toBe(
      'disconnected',
    );
  });
  it('uses the lower-case name as the identity name', () => {
    expect(identityNameOf('VMM-NewYork')).toBe('vmm-newyork');
  });
});
