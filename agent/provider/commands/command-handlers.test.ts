import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { AgentCommand } from '../../../common/wire/agent-channel-messages.ts';
import type { HostCommand, HostCommandResult } from '../../../common/wire/host-control-messages.ts';
import { parseSite } from '../site/site-file.ts';
import { CommandLog } from './command-log.ts';
import { commandDispatcher, type HostRelayer } from './command-handlers.ts';

const site = parseSite(
  JSON.stringify({
    server: 'S',
    clouds: [{ name: 'Gold', hostGroups: ['G'] }],
    hostGroups: [{ name: 'G' }],
    hosts: [{ name: 'h1', hostGroup: 'G' }],
  }),
  'site.json',
);

/** A relayer whose answers the test releases by hand. */
function fakeHosts() {
  const calls: Array<{ host: string; command: HostCommand }> = [];
  const waiting = new Map<string, (r: HostCommandResult | SecondsiteError) => void>();
  const hosts: HostRelayer = {
    relay: (host, command) =>
      new Promise((resolve, reject) => {
        calls.push({ host, command });
        waiting.set(command.commandId, (r) =>
          r instanceof SecondsiteError ? reject(r) : resolve(r),
        );
      }),
  };
  const release = (id: string, r: HostCommandResult | SecondsiteError): void => {
    waiting.get(id)?.(r);
    waiting.delete(id);
  };
  return { hosts, calls, release };
}

const relayed = (command: Omit<HostCommand, 'commandId'>): AgentCommand =>
  ({ host: { host: 'h1', command: { commandId: '', ...command } } }) as AgentCommand;
const pause = relayed({ pauseVm: { name: 'vm1', paused: true } });
const points = relayed({ listPoints: { name: 'vm1' } });
const sync: AgentCommand = { kind: 'syncCloud', syncCloud: { cloud: 'Gold' } };
const tick = () => new Promise((r) => setImmediate(r));

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ss-dispatch-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('relayed host commands in the dispatcher', () => {
  it('relays with the agent command id and copies a host error up', async () => {
    const f = fakeHosts();
    const d = commandDispatcher(() => site, await CommandLog.open(dir), f.hosts);
    const answer = d.dispatch('a1', pause);
    await tick();
    expect(f.calls).toEqual([
      { host: 'h1', command: { commandId: 'a1', pauseVm: { name: 'vm1', paused: true } } },
    ]);
    const refused = { code: 'SS_NOT_PAIRED', message: 'no', detailsJson: '{}' };
    f.release('a1', { commandId: 'a1', error: refused });
    expect(await answer).toEqual({
      result: 'host',
      host: { commandId: 'a1', error: refused },
      error: refused,
    });
  });

  it('does not hold other commands while a relay waits, and relays one id once', async () => {
    const f = fakeHosts();
    const log = await CommandLog.open(dir);
    const d = commandDispatcher(() => site, log, f.hosts);
    const first = d.dispatch('a1', pause);
    const resend = d.dispatch('a1', pause);
    await tick();
    // The relay is still waiting for its host; a local command goes through meanwhile.
    expect((await d.dispatch('s1', sync)).cloud?.name).toBe('Gold');
    expect(f.calls).toHaveLength(1);
    f.release('a1', { commandId: 'a1', error: null });
    expect(await first).toEqual(await resend);
    // Answered: a later resend gets the record, also after a restart (the log on disk).
    const again = commandDispatcher(() => site, await CommandLog.open(dir), f.hosts);
    expect(await again.dispatch('a1', pause)).toEqual(await first);
    expect(f.calls).toHaveLength(1);
    expect(d.applied()).toBe(2);
  });

  it('records neither a relay that failed on the way nor a list of points', async () => {
    const f = fakeHosts();
    const d = commandDispatcher(() => site, await CommandLog.open(dir), f.hosts);
    const lost = d.dispatch('a1', pause);
    await tick();
    f.release('a1', new SecondsiteError('SS_UNAVAILABLE', 'host h1 is not connected'));
    expect((await lost).error).toMatchObject({ code: 'SS_UNAVAILABLE' });
    const retried = d.dispatch('a1', pause);
    await tick();
    expect(f.calls).toHaveLength(2); // tried again
    f.release('a1', { commandId: 'a1', error: null });
    expect((await retried).error).toBeUndefined();

    for (const n of [1, 2]) {
      const listing = d.dispatch('p1', points);
      await tick();
      expect(f.calls).toHaveLength(2 + n);
      f.release('p1', { commandId: 'p1', error: null, points: [] });
      expect((await listing).host?.points).toEqual([]);
    }
  });

  it('refuses a relay without a command, and one when no hosts are served', async () => {
    const d = commandDispatcher(() => site, await CommandLog.open(dir));
    expect((await d.dispatch('x1', pause)).error).toMatchObject({ code: 'SS_UNAVAILABLE' });
    const empty = { host: { host: 'h1' } } as unknown as AgentCommand;
    expect((await d.dispatch('x2', empty)).error).toMatchObject({ code: 'SS_PROTOCOL' });
  });
});
