import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  AssociationView,
  CloudView,
  MapView,
  PolicyView,
  ServerView,
} from '../../../common/api-client/index.ts';
import { CHICAGO_SITE, NEW_YORK_SITE } from '../../helpers/provider-lab.ts';
import { SiteLab } from '../../helpers/site-lab.ts';
import { waitFor } from '../../helpers/wait-for.ts';

const NY = 'VMM-NewYork';
const CH = 'VMM-Chicago';

let lab: SiteLab;
/** `policy list` after step 2: what the refusals of step 3 must leave unchanged. */
let gold: PolicyView[] = [];
const cli = <T>(args: string[], code = 0): Promise<T> => lab.cli<T>(args, code);

interface Refusal {
  error: { code: string; message: string; details: { field?: string; flag?: string } };
}

interface SiteJson {
  clouds: { name: string; hostGroups: string[] }[];
  hostGroups: { name: string }[];
  hosts: { name: string; hostGroup: string; osVersion?: string; defaultStorage?: string }[];
  logicalNetworks: { name: string; clouds: string[] }[];
}

const policies = () => cli<PolicyView[]>(['policy', 'list', '--vault', 'prod']);
const clouds = async () =>
  (await cli<CloudView[]>(['cloud', 'list', '--vault', 'prod'])).map((c) => [
    `${c.server}/${c.name}`,
    c.policy,
    c.pairedWith,
  ]);
const create = (name: string, ...flags: string[]) => [
  'policy',
  'create',
  '--vault',
  'prod',
  '--name',
  name,
  ...flags,
];
const associate = (policy: string, source: string, target: string) => [
  'policy',
  'associate',
  '--vault',
  'prod',
  '--policy',
  policy,
  '--source-cloud',
  source,
  '--target-cloud',
  target,
];
const networkMap = (verb: string, source: string, target: string) => [
  'network-map',
  verb,
  '--vault',
  'prod',
  '--source',
  source,
  '--target',
  target,
];

beforeAll(() => {
  lab = new SiteLab('ss-e2e-pol-');
});

afterAll(async () => {
  await lab.close();
});

describe('policies and maps', () => {
  it('1. starts a coordinator and registers New York and Chicago from their site files', async () => {
    await lab.startCoordinator();
    // New York gains a third cloud so one server can protect into itself (R6) while
    // GoldCloud1 is paired with Chicago; Chicago's silver host runs another OS version.
    const ny = lab.siteCopy(NEW_YORK_SITE, 'new-york.json', (site) => {
      const s = site as unknown as SiteJson;
      s.clouds.push({ name: 'BronzeCloud1', hostGroups: ['NY-Bronze'] });
      s.hostGroups.push({ name: 'NY-Bronze' });
      s.hosts.push({ name: 'ny-hv3', hostGroup: 'NY-Bronze', osVersion: '2012R2' });
      s.logicalNetworks[0]!.clouds.push('BronzeCloud1');
    });
    const chi = lab.siteCopy(CHICAGO_SITE, 'chicago.json', (site) => {
      const s = site as unknown as SiteJson;
      s.hosts.find((h) => h.name === 'chi-hv2')!.osVersion = '2016';
    });
    await Promise.all([
      lab.startProvider('ny', ny, '127.0.0.1'),
      lab.startProvider('chi', chi, '127.0.0.1'),
    ]);
    await waitFor(async () => {
      const s = await cli<ServerView[]>(['server', 'list', '--vault', 'prod']);
      return s.length === 2 && s.every((x) => x.state === 'connected');
    });
  });

  it('2. creates a valid policy with every flag', async () => {
    const p = await cli<PolicyView>(
      create(
        'Gold',
        '--host-version',
        '2012R2',
        '--auth',
        'certificate',
        '--port',
        '8084',
        '--copy-frequency',
        '30s',
        '--retention-hours',
        '4',
        '--app-consistent-hours',
        '2',
        '--compression',
        'on',
        '--delete-replica-on-disable',
        'off',
        '--initial',
        'scheduled:2099-01-01T02:00:00+01:00',
      ),
    );
    expect(p).toMatchObject({
      name: 'Gold',
      hostVersion: '2012R2',
      auth: 'certificate',
      port: 8084,
      copyFrequency: '30s',
      retentionHours: 4,
      appConsistentHours: 2,
      compression: true,
      deleteReplicaOnDisable: false,
      initial: { method: 'scheduled', at: '2099-01-01T01:00:00.000Z' },
      associations: [],
    });
    gold = await policies();
    expect(gold).toEqual([p]);
  });

  it('3. negative: each invalid field exits 2 naming its flag; the list is unchanged', async () => {
    const cases: [string[], string, string][] = [
      [['--copy-frequency', '1m'], 'copyFrequency', '--copy-frequency'],
      [['--app-consistent-hours', '-1'], 'appConsistentHours', '--app-consistent-hours'],
      [['--app-consistent-hours', '13'], 'appConsistentHours', '--app-consistent-hours'],
      [
        ['--retention-hours', '3', '--app-consistent-hours', '3'],
        'appConsistentHours',
        '--app-consistent-hours',
      ],
      [['--retention-hours', '25'], 'retentionHours', '--retention-hours'],
      [['--auth', 'other'], 'auth', '--auth'],
      [['--port', '0'], 'port', '--port'],
      [['--compression', 'maybe'], 'compression', '--compression'],
      [['--initial', 'scheduled:2099-02-30T00:00Z'], 'initial', '--initial'],
      [['--initial', 'offline'], 'exportPath', '--export-path'],
    ];
    const refusals = await Promise.all(
      cases.map(([flags]) => cli<Refusal>(create('Bad', ...flags), 2)),
    );
    refusals.forEach((r, i) => {
      const [, field, flag] = cases[i]!;
      expect(r.error.code).toBe('SS_BAD_INPUT');
      expect([r.error.details.field, r.error.details.flag]).toEqual([field, flag]);
      expect(r.error.message.startsWith(`${flag}: `)).toBe(true);
    });
    expect(await policies()).toEqual(gold);
  });

  it('4. associates New York GoldCloud1 with Chicago GoldCloud2; cloud list shows the pair', async () => {
    const a = await cli<AssociationView>(associate('Gold', `${NY}/GoldCloud1`, `${CH}/GoldCloud2`));
    expect(a).toMatchObject({
      policy: 'Gold',
      sourceCloud: `${NY}/GoldCloud1`,
      targetCloud: `${CH}/GoldCloud2`,
    });
    expect(await clouds()).toEqual([
      [`${CH}/GoldCloud2`, 'Gold', `${NY}/GoldCloud1`],
      [`${CH}/SilverCloud2`, null, null],
      [`${NY}/BronzeCloud1`, null, null],
      [`${NY}/GoldCloud1`, 'Gold', `${CH}/GoldCloud2`],
      [`${NY}/SilverCloud1`, null, null],
    ]);
    expect((await policies())[0]?.associations).toEqual([
      { sourceCloud: `${NY}/GoldCloud1`, targetCloud: `${CH}/GoldCloud2` },
    ]);
  });

  it('5. negative: clouds whose hosts run mixed OS versions are refused', async () => {
    await cli(create('Silver'));
    const r = await cli<Refusal>(
      associate('Silver', `${NY}/SilverCloud1`, `${CH}/SilverCloud2`),
      1,
    );
    expect(r.error.code).toBe('SS_HOST_VERSION_MISMATCH');
    expect(r.error.message).toContain(`2016: ${CH}/SilverCloud2:chi-hv2`);
    const bad = await cli<Refusal>(associate('Silver', `${NY}/SilverCloud1`, `${CH}/NoCloud`), 2);
    expect([bad.error.details.field, bad.error.details.flag]).toEqual([
      'targetCloud',
      '--target-cloud',
    ]);
    const silver = (await policies()).find((p) => p.name === 'Silver');
    expect([silver?.hostVersion, silver?.associations]).toEqual([null, []]);
  });

  it('6. one server protects into itself: New York SilverCloud1 → BronzeCloud1', async () => {
    await cli(associate('Silver', `${NY}/SilverCloud1`, `${NY}/BronzeCloud1`));
    const listed = await clouds();
    expect(listed.filter(([c]) => c?.startsWith(NY))).toEqual([
      [`${NY}/BronzeCloud1`, 'Silver', `${NY}/SilverCloud1`],
      [`${NY}/GoldCloud1`, 'Gold', `${CH}/GoldCloud2`],
      [`${NY}/SilverCloud1`, 'Silver', `${NY}/BronzeCloud1`],
    ]);
    const silver = (await policies()).find((p) => p.name === 'Silver');
    expect(silver?.hostVersion).toBe('2012R2');
  });

  it('7. network maps: an unknown network exits 2; create, list and delete work', async () => {
    const source = `${NY}/VMNetwork1 NewYork`;
    const target = `${CH}/VMNetwork1 Chicago`;
    const bad = await cli<Refusal>(networkMap('create', source, `${CH}/VMNetwork9 Chicago`), 2);
    expect([bad.error.details.field, bad.error.details.flag]).toEqual(['target', '--target']);
    expect(await cli<MapView[]>(['network-map', 'list', '--vault', 'prod'])).toEqual([]);
    expect(await cli<MapView>(networkMap('create', source, target))).toEqual({ source, target });
    expect(await cli<MapView[]>(['network-map', 'list', '--vault', 'prod'])).toEqual([
      { source, target },
    ]);
    await cli(networkMap('delete', source, target));
    expect(await cli<MapView[]>(['network-map', 'list', '--vault', 'prod'])).toEqual([]);
  });

  it('8. storage maps: GOLD → GOLD is kept; an unknown classification exits 2', async () => {
    const map = ['storage-map', 'create', '--vault', 'prod', '--source', `${NY}/GOLD`];
    const bad = await cli<Refusal>([...map, '--target', `${CH}/PLATINUM`], 2);
    expect(bad.error.details.flag).toBe('--target');
    await cli([...map, '--target', `${CH}/GOLD`]);
    expect(await cli<MapView[]>(['storage-map', 'list', '--vault', 'prod'])).toEqual([
      { source: `${NY}/GOLD`, target: `${CH}/GOLD` },
    ]);
  });
});
