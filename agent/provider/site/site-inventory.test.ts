import { mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSite } from './site-file.ts';
import { measuredFreeBytes, siteInventory } from './site-inventory.ts';

const text = (name: string): string =>
  readFileSync(new URL(`../../../deploy/sites/${name}`, import.meta.url), 'utf8');

const dir = mkdtempSync(join(tmpdir(), 'ss-site-inv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A fake measurement: the path's length, so each location's number is its own. */
const fakeFree = (path: string): string => String(path.length * 1000);

describe('siteInventory fabric details', () => {
  it('reports every New York host, VM network and classification with free space', () => {
    const inv = siteInventory(parseSite(text('new-york.json'), 'new-york.json').file, fakeFree);
    expect(inv.hosts).toEqual(['ny-hv1', 'ny-hv2']);
    expect(inv.hostDetails).toEqual([
      {
        name: 'ny-hv1',
        hostGroup: 'NY-Gold',
        osVersion: '2012R2',
        defaultStorage: '/srv/ny-hv1/default',
        defaultFreeBytes: String('/srv/ny-hv1/default'.length * 1000),
      },
      {
        name: 'ny-hv2',
        hostGroup: 'NY-Silver',
        osVersion: '2012R2',
        defaultStorage: '/srv/ny-hv2/default',
        defaultFreeBytes: String('/srv/ny-hv2/default'.length * 1000),
      },
    ]);
    expect(inv.vmNetworks).toEqual([
      {
        name: 'VMNetwork1 NewYork',
        logicalNetwork: 'LogicalNetwork1 NewYork',
        subnets: [{ name: 'web', prefix: '10.1.0.0/24' }],
      },
      {
        name: 'VMNetwork2 NewYork',
        logicalNetwork: 'LogicalNetwork1 NewYork',
        subnets: [{ name: 'db', prefix: '10.1.1.0/24' }],
      },
    ]);
    expect(inv.classifications).toEqual([
      {
        name: 'GOLD',
        locations: [{ host: 'ny-hv1', path: '/srv/ny-hv1/gold', freeBytes: '16000' }],
      },
      {
        name: 'SILVER',
        locations: [{ host: 'ny-hv2', path: '/srv/ny-hv2/silver', freeBytes: '18000' }],
      },
    ]);
  });

  it('sends empty strings and 0 for a host without OS version or default storage', () => {
    const site = JSON.parse(text('chicago.json')) as { hosts: Record<string, unknown>[] };
    site.hosts[1] = { name: 'chi-hv2', hostGroup: 'CHI-Silver' };
    const inv = siteInventory(parseSite(JSON.stringify(site), 'c.json').file, fakeFree);
    expect(inv.hostDetails?.[1]).toEqual({
      name: 'chi-hv2',
      hostGroup: 'CHI-Silver',
      osVersion: '',
      defaultStorage: '',
      defaultFreeBytes: '0',
    });
  });
});

describe('measuredFreeBytes', () => {
  const expected = (p: string): string => {
    const s = statfsSync(p, { bigint: true });
    return (s.bavail * s.bsize).toString();
  };

  it('measures an existing folder', () => {
    expect(measuredFreeBytes(dir)).toMatch(/^\d+$/);
    expect(BigInt(measuredFreeBytes(dir))).toBeGreaterThan(0n);
  });

  it('measures the nearest existing parent of a folder not made yet', () => {
    const free = measuredFreeBytes(join(dir, 'not', 'yet', 'made'));
    // Same file system as dir: equal unless something else wrote in between, so compare
    // with a fresh reading taken right after.
    const parent = expected(dir);
    expect(Math.abs(Number(BigInt(free) - BigInt(parent)))).toBeLessThan(64 * 1024 * 1024);
  });

  it('gives 0 when the path cannot be measured (a file in the way)', () => {
    writeFileSync(join(dir, 'plain-file'), 'x');
    expect(measuredFreeBytes(join(dir, 'plain-file', 'below'))).toBe('0');
  });
});
