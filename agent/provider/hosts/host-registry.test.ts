import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../common/log/log.ts';
import type {
  HostInventoryReport,
  ProviderFrame,
} from '../../../common/wire/host-control-messages.ts';
import { parseSite } from '../site/site-file.ts';
import { HostRegistry, type HostSession } from './host-registry.ts';
import { declaredVms, hostPlacement } from './site-vms.ts';

const site = parseSite(
  JSON.stringify({
    server: 'S',
    clouds: [{ name: 'Gold', hostGroups: ['G'] }],
    hostGroups: [{ name: 'G' }, { name: 'Loose' }],
    hosts: [
      { name: 'h1', hostGroup: 'G' },
      { name: 'h2', hostGroup: 'Loose' },
    ],
    vmNetworks: [],
    storageClassifications: [{ name: 'GOLD', locations: [{ host: 'h1', path: '/g' }] }],
    vms: [
      {
        name: 'a',
        host: 'h1',
        state: 'running',
        disks: [{ size: '1GiB' }, { size: '1GiB', classification: 'GOLD' }],
        nics: [],
      },
      { name: 'b', host: 'h1', disks: [{ size: '2MiB' }, { size: '4MiB' }], nics: [] },
      { name: 'c', host: 'h2', disks: [{ size: '1MiB' }], nics: [] },
    ],
  }),
  'site.json',
).file;

function session(host: string): HostSession & { sent: ProviderFrame[]; ended: boolean } {
  const s = {
    host,
    sent: [] as ProviderFrame[],
    ended: false,
    send: (f: ProviderFrame) => void s.sent.push(f),
    end: () => void (s.ended = true),
  };
  return s;
}

const vm = (name: string) => ({
  name,
  state: 'HOST_VM_STATE_STOPPED' as const,
  disks: [],
  nics: [],
});

describe('site VMs of a host', () => {
  it('places a host in the cloud of its host group, or none', () => {
    expect(hostPlacement(site, 'h1')).toEqual({ hostGroup: 'G', cloud: 'Gold' });
    expect(hostPlacement(site, 'h2')).toEqual({ hostGroup: 'Loose', cloud: '' });
    expect(hostPlacement(site, 'nope')).toBeUndefined();
  });

  it('turns declared VMs into create commands with stable ids and byte sizes', () => {
    expect(declaredVms(site, 'h1')).toEqual([
      {
        commandId: 'site/h1/a/create',
        create: {
          name: 'a',
          disks: [
            { sizeBytes: String(1024 ** 3), classification: '' },
            { sizeBytes: String(1024 ** 3), classification: 'GOLD' },
          ],
          nics: [],
          start: true,
        },
      },
      {
        commandId: 'site/h1/b/create',
        create: {
          name: 'b',
          disks: [
            { sizeBytes: String(2 * 1024 ** 2), classification: '' },
            { sizeBytes: String(4 * 1024 ** 2), classification: '' },
          ],
          nics: [],
          start: false,
        },
      },
    ]);
  });
});

describe('HostRegistry', () => {
  it('asks a host for its missing VMs once per session and reports every change', () => {
    const reports: HostInventoryReport[] = [];
    const reg = new HostRegistry({
      site: () => site,
      report: (r) => reports.push(r),
      log: silentLogger,
    });
    const s1 = session('h1');
    reg.attach(s1, { vms: [vm('a')] });
    expect(s1.sent.map((f) => ('command' in f ? f.command.commandId : f.body))).toEqual([
      'site/h1/b/create',
    ]);
    reg.onInventory(s1, { vms: [vm('a'), vm('local')] });
    expect(s1.sent).toHaveLength(1); // still in flight: not sent again on this session
    expect(reports.at(-1)).toMatchObject({ host: 'h1', cloud: 'Gold', connected: true });
    expect(reports.at(-1)?.inventory.vms.map((v) => v.name)).toEqual(['a', 'local']);

    // A newer connection replaces the old one, which is ended and then ignored.
    const s2 = session('h1');
    reg.attach(s2, { vms: [vm('a'), vm('b')] });
    expect(s1.ended).toBe(true);
    expect(s2.sent).toEqual([]);
    reg.detach(s1);
    expect(reg.state('h1')).toBe('connected');
    reg.detach(s2);
    expect(reg.state('h1')).toBe('disconnected');
    expect(reg.reports()).toMatchObject([{ host: 'h1', connected: false }]);
  });
});

describe('HostRegistry reports and relays', () => {
  const disk = (index: number) => ({ index, sizeBytes: '1048576', nbd: '' });

  it("fills classifications from the site file and passes the host's endpoint", () => {
    const reports: HostInventoryReport[] = [];
    const reg = new HostRegistry({
      site: () => site,
      report: (r) => reports.push(r),
      log: silentLogger,
    });
    const s = session('h1');
    const a = { ...vm('a'), disks: [disk(0), disk(1)] };
    const replica = { ...vm('r'), disks: [disk(0)] };
    reg.attach(s, { vms: [a, replica] }, { address: '10.0.0.1', certPort: 8084, ticketPort: 8083 });
    expect(reports.at(-1)).toMatchObject({ address: '10.0.0.1', certPort: 8084, ticketPort: 8083 });
    const [ra, rr] = reports.at(-1)!.inventory.vms;
    expect(ra?.disks.map((d) => d.classification)).toEqual(['', 'GOLD']);
    expect(rr?.disks.map((d) => d.classification)).toEqual(['']); // not declared here
    reg.detach(s);
    expect(reg.reports()[0]).toMatchObject({ connected: false, address: '10.0.0.1' });
  });

  it('refuses an unknown host, and routes a relayed answer to the relay only', async () => {
    const reg = new HostRegistry({ site: () => site, report: () => undefined, log: silentLogger });
    await expect(
      reg.relay('h9', { commandId: 'c1', listPoints: { name: 'a' } }),
    ).rejects.toMatchObject({ code: 'SS_NOT_FOUND', message: expect.stringContaining('h9') });
    const s = session('h2');
    reg.attach(s, { vms: [vm('c')] });
    const answer = reg.relay('h2', { commandId: 'c2', listPoints: { name: 'c' } });
    expect(s.sent.map((f) => ('command' in f ? f.command.commandId : f.body))).toEqual(['c2']);
    reg.onResult(s, { commandId: 'c2', error: null, points: [] });
    await expect(answer).resolves.toMatchObject({ commandId: 'c2', points: [] });
  });
});
