import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isSecondsiteError } from '../../../common/errors/errors.ts';
import { parseSite } from './site-file.ts';
import { siteInventory } from './site-inventory.ts';

const NY = readFileSync(new URL('../../../deploy/sites/new-york.json', import.meta.url), 'utf8');
const CHI = readFileSync(new URL('../../../deploy/sites/chicago.json', import.meta.url), 'utf8');

/** The 1-based line of the first occurrence of `needle` at or after `after`. */
function lineOf(text: string, needle: string, after = ''): number {
  const start = after === '' ? 0 : text.indexOf(after);
  const at = text.indexOf(needle, start);
  if (at < 0) throw new Error(`fixture lacks ${needle}`);
  return text.slice(0, at).split('\n').length;
}

function refusal(text: string): { line: number; message: string; at: string } {
  try {
    parseSite(text, 'site.json');
  } catch (e) {
    if (!isSecondsiteError(e)) throw e;
    expect(e.code).toBe('SS_BAD_INPUT');
    return { line: e.details['line'] as number, message: e.message, at: e.details['at'] as string };
  }
  throw new Error('accepted');
}

describe('site file', () => {
  it('accepts the New York and Chicago examples and reports their clouds', () => {
    const ny = parseSite(NY, 'new-york.json');
    expect(ny.file.server).toBe('VMM-NewYork');
    expect(siteInventory(ny.file).clouds).toEqual([
      {
        name: 'GoldCloud1',
        hostGroups: ['NY-Gold'],
        logicalNetworks: ['LogicalNetwork1 NewYork'],
        vmNetworks: ['VMNetwork1 NewYork', 'VMNetwork2 NewYork'],
      },
      {
        name: 'SilverCloud1',
        hostGroups: ['NY-Silver'],
        logicalNetworks: ['LogicalNetwork1 NewYork'],
        vmNetworks: ['VMNetwork1 NewYork', 'VMNetwork2 NewYork'],
      },
    ]);
    expect(parseSite(CHI, 'chicago.json').file.server).toBe('VMM-Chicago');
  });

  it.each([
    [
      'a host group (in a host)',
      '"hostGroup": "NY-Silver"',
      '"hostGroup": "NY-Bronze"',
      'host group "NY-Bronze"',
    ],
    [
      'a host group (in a cloud)',
      '"hostGroups": ["NY-Gold"]',
      '"hostGroups": ["NY-Nope"]',
      'host group "NY-Nope"',
    ],
    [
      'a cloud (in a logical network)',
      '"clouds": ["GoldCloud1", "SilverCloud1"]',
      '"clouds": ["GoldCloud1", "BronzeCloud1"]',
      'cloud "BronzeCloud1"',
    ],
    [
      'a logical network',
      '"logicalNetwork": "LogicalNetwork1 NewYork",\n      "subnets": [{ "name": "db"',
      '"logicalNetwork": "LogicalNetwork9",\n      "subnets": [{ "name": "db"',
      'logical network "LogicalNetwork9"',
    ],
    [
      'a network (in a VM)',
      '"network": "VMNetwork2 NewYork"',
      '"network": "VMNetwork3 NewYork"',
      'VM network "VMNetwork3 NewYork"',
    ],
    ['a subnet', '"subnet": "db"', '"subnet": "dmz"', 'subnet "dmz"'],
    [
      'a classification',
      '"classification": "SILVER"',
      '"classification": "BRONZE"',
      'classification "BRONZE"',
    ],
    [
      'a host (in a VM)',
      '"host": "ny-hv2",\n      "state"',
      '"host": "ny-hv9",\n      "state"',
      'host "ny-hv9"',
    ],
    [
      'a host (in a storage location)',
      '"host": "ny-hv2", "path"',
      '"host": "ny-hv7", "path"',
      'host "ny-hv7"',
    ],
  ])('refuses an unknown %s, naming it and its line', (_what, from, to, named) => {
    expect(NY.includes(from), `fixture has ${from}`).toBe(true);
    const text = NY.replace(from, to);
    const r = refusal(text);
    expect(r.message).toContain(named);
    expect(r.line).toBe(lineOf(text, to.split('\n')[0]!));
    expect(r.message).toContain(`line ${r.line}`);
  });

  it('refuses an unknown key with its line', () => {
    const text = NY.replace('"osVersion": "2012R2",', '"osVersion": "2012R2", "colour": "red",');
    const r = refusal(text);
    expect(r.at).toBe('hosts.0.colour');
    expect(r.line).toBe(lineOf(text, '"colour"'));
  });

  it('refuses a repeated name and a JSON syntax error with their lines', () => {
    const dup = NY.replace('{ "name": "NY-Silver" }', '{ "name": "NY-Gold" }');
    expect(refusal(dup).message).toContain('repeats the name "NY-Gold"');
    const broken = NY.replace('"VMM-NewYork",', '"VMM-NewYork"');
    expect(refusal(broken).line).toBe(3);
  });
});
