import { describe, expect, it } from 'vitest';
import { SecondsiteError, exitCodeFor } from '../../common/errors/errors.ts';
import {
  checkAssociation,
  parseZonedIso,
  updatePolicy,
  validatePolicy,
  type CloudAssociationView,
  type HostOsView,
  type Policy,
  type PolicyInput,
  type PolicyUpdateInput,
} from './policy.ts';

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);

/** The error validatePolicy throws for `input`, with the field it names. */
function refusal(input: PolicyInput): SecondsiteError {
  try {
    validatePolicy({ name: 'Gold', ...input }, NOW);
  } catch (e) {
    if (e instanceof SecondsiteError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('validatePolicy: defaults and normal form', () => {
  it('fills every R11 field with its documented default', () => {
    expect(validatePolicy({ name: 'Gold' }, NOW)).toEqual({
      name: 'Gold',
      hostVersion: null,
      auth: 'certificate',
      port: 8084,
      copyFrequency: '5m',
      retentionHours: 2,
      appConsistentHours: 0,
      compression: true,
      deleteReplicaOnDisable: false,
      initial: { method: 'network' },
    });
  });

  it('returns a frozen policy', () => {
    const p = validatePolicy(
      { name: 'Gold', initial: 'offline', exportPath: '/e', importPath: '/i' },
      NOW,
    );
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.initial)).toBe(true);
  });

  it('takes CLI strings and API values alike', () => {
    const fromCli = validatePolicy(
      {
        name: 'Gold',
        hostVersion: '2012R2',
        auth: 'kerberos',
        copyFrequency: '30s',
        retentionHours: '12',
        appConsistentHours: '4',
        compression: 'off',
        deleteReplicaOnDisable: 'on',
      },
      NOW,
    );
    const fromApi = validatePolicy(
      {
        name: 'Gold',
        hostVersion: '2012R2',
        auth: 'kerberos',
        copyFrequency: '30s',
        retentionHours: 12,
        appConsistentHours: 4,
        compression: false,
        deleteReplicaOnDisable: true,
      },
      NOW,
    );
    expect(fromCli).toEqual(fromApi);
    expect(fromCli.port).toBe(8083);
  });

  it('keeps an explicit port for either auth type', () => {
    expect(validatePolicy({ name: 'G', auth: 'kerberos', port: '9000' }, NOW).port).toBe(9000);
    expect(validatePolicy({ name: 'G', port: 18084 }, NOW).port).toBe(18084);
  });

  it('accepts each copy frequency and the retention/app-consistent bounds', () => {
    for (const f of ['30s', '5m', '15m']) {
      expect(validatePolicy({ name: 'G', copyFrequency: f }, NOW).copyFrequency).toBe(f);
    }
    expect(validatePolicy({ name: 'G', retentionHours: 0 }, NOW).retentionHours).toBe(0);
    const max = validatePolicy({ name: 'G', retentionHours: 24, appConsistentHours: 12 }, NOW);
    expect([max.retentionHours, max.appConsistentHours]).toEqual([24, 12]);
    const low = validatePolicy({ name: 'G', retentionHours: 2, appConsistentHours: 1 }, NOW);
    expect(low.appConsistentHours).toBe(1);
  });

  it('normalizes a scheduled start to UTC ISO', () => {
    const p = validatePolicy({ name: 'G', initial: 'scheduled:2026-11-26T02:30:00+01:00' }, NOW);
    expect(p.initial).toEqual({ method: 'scheduled', at: '2026-11-26T01:30:00.000Z' });
  });

  it('keeps the offline paths', () => {
    const p = validatePolicy(
      { name: 'G', initial: 'offline', exportPath: '/mnt/export', importPath: '/mnt/import' },
      NOW,
    );
    expect(p.initial).toEqual({
      method: 'offline',
      exportPath: '/mnt/export',
      importPath: '/mnt/import',
    });
  });
});

describe('validatePolicy: each bad value is refused naming the field and the allowed values', () => {
  const cases: [string, PolicyInput, string, RegExp][] = [
    ['empty name', { name: '' }, 'name', /1-80 characters/],
    ['name with a slash', { name: 'a/b' }, 'name', /"\/"/],
    ['name with spaces around', { name: ' Gold' }, 'name', /leading or trailing/],
    ['name with a control character', { name: 'Go\nld' }, 'name', /control/],
    ['name not a string', { name: 7 }, 'name', /characters/],
    ['empty host version', { hostVersion: '' }, 'hostVersion', /1-40/],
    ['unknown auth', { auth: 'ntlm' }, 'auth', /certificate, kerberos/],
    ['port 0', { port: 0 }, 'port', /1-65535/],
    ['port 70000', { port: '70000' }, 'port', /1-65535/],
    ['port not a number', { port: 'https' }, 'port', /1-65535/],
    ['copy frequency 1m', { copyFrequency: '1m' }, 'copyFrequency', /30s, 5m, 15m/],
    ['copy frequency as seconds', { copyFrequency: 30 }, 'copyFrequency', /30s, 5m, 15m/],
    ['negative retention', { retentionHours: -1 }, 'retentionHours', /0-24/],
    ['retention 25', { retentionHours: 25 }, 'retentionHours', /0-24/],
    ['fractional retention', { retentionHours: '1.5' }, 'retentionHours', /whole number/],
    [
      'app-consistent 13',
      { retentionHours: 24, appConsistentHours: 13 },
      'appConsistentHours',
      /0 \(off\) or .*1-12/,
    ],
    ['app-consistent negative', { appConsistentHours: '-1' }, 'appConsistentHours', /1-12/],
    [
      'app-consistent = retention',
      { retentionHours: 4, appConsistentHours: 4 },
      'appConsistentHours',
      /less than retentionHours \(4\)/,
    ],
    [
      'app-consistent > retention',
      { retentionHours: 2, appConsistentHours: 5 },
      'appConsistentHours',
      /less than retentionHours/,
    ],
    [
      'app-consistent with retention 0',
      { retentionHours: 0, appConsistentHours: 1 },
      'appConsistentHours',
      /or 0 \(off\)/,
    ],
    ['compression yes', { compression: 'yes' }, 'compression', /on, off/],
    ['delete replica 1', { deleteReplicaOnDisable: 1 }, 'deleteReplicaOnDisable', /on, off/],
    [
      'unknown initial method',
      { initial: 'usb' },
      'initial',
      /network, scheduled:ISO-TIME.*offline/,
    ],
    ['scheduled without a zone', { initial: 'scheduled:2026-12-01T10:00' }, 'initial', /zone/],
    ['scheduled on Feb 30', { initial: 'scheduled:2027-02-30T10:00Z' }, 'initial', /zone/],
    [
      'scheduled in the past',
      { initial: 'scheduled:2026-11-25T11:59:59Z' },
      'initial',
      /not in the future/,
    ],
    [
      'scheduled now',
      { initial: 'scheduled:2026-11-25T12:00:00Z' },
      'initial',
      /not in the future/,
    ],
    ['offline without paths', { initial: 'offline' }, 'exportPath', /required for offline/],
    [
      'offline without import path',
      { initial: 'offline', exportPath: '/e' },
      'importPath',
      /required for offline/,
    ],
    ['export path with network', { exportPath: '/e' }, 'exportPath', /only allowed with .*offline/],
    [
      'import path with scheduled',
      { initial: 'scheduled:2027-01-01T00:00Z', importPath: '/i' },
      'importPath',
      /only allowed/,
    ],
  ];
  it.each(cases)('%s', (_title, input, field, message) => {
    const e = refusal(input);
    expect(e.code).toBe('SS_BAD_INPUT');
    expect(exitCodeFor(e)).toBe(2);
    expect(e.details['field']).toBe(field);
    expect(e.message.startsWith(`${field}: `)).toBe(true);
    expect(e.message).toMatch(message);
  });
});

describe('parseZonedIso', () => {
  it('accepts minutes, seconds, fractions and offsets', () => {
    expect(parseZonedIso('2026-12-01T10:00Z')).toBe(Date.UTC(2026, 11, 1, 10));
    expect(parseZonedIso('2026-12-01T10:00:30.250-02:00')).toBe(
      Date.UTC(2026, 11, 1, 12, 0, 30, 250),
    );
  });
  it('refuses impossible dates and times', () => {
    for (const s of [
      '2026-02-29T00:00Z',
      '2026-04-31T00:00Z',
      '2026-12-01T24:00Z',
      '2026-12-01T10:60Z',
      '2026-12-01',
      'tomorrow',
    ]) {
      expect(parseZonedIso(s), s).toBeNull();
    }
    expect(parseZonedIso('2028-02-29T00:00Z')).toBe(Date.UTC(2028, 1, 29));
  });
});

const gold = (over: Partial<Policy> = {}): Policy => ({
  ...validatePolicy({ name: 'Gold' }, NOW),
  ...over,
});
const cloud = (
  server: string,
  name: string,
  over: Partial<CloudAssociationView> = {},
): CloudAssociationView => ({
  server,
  name,
  policy: null,
  pairedWith: null,
  role: null,
  ...over,
});
const NY1 = cloud('VMM-NewYork', 'GoldCloud1');
const CH2 = cloud('VMM-Chicago', 'GoldCloud2');
const hostsBy =
  (table: Record<string, HostOsView[]>) =>
  (c: CloudAssociationView): readonly HostOsView[] =>
    table[`${c.server}/${c.name}`] ?? [];
const allR2 = hostsBy({
  'VMM-NewYork/GoldCloud1': [{ name: 'ny-hv1', osVersion: '2012R2' }],
  'VMM-Chicago/GoldCloud2': [{ name: 'ch-hv1', osVersion: '2012R2' }],
});

function conflict(f: () => unknown): SecondsiteError {
  try {
    f();
  } catch (e) {
    if (e instanceof SecondsiteError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('checkAssociation (R6, R12)', () => {
  it('pairs clouds on two servers and pins the hosts’ OS version', () => {
    expect(checkAssociation(gold(), NY1, CH2, allR2)).toEqual({
      hostVersion: '2012R2',
      alreadyAssociated: false,
    });
  });

  it('pairs two clouds of one server', () => {
    const a = cloud('VMM-One', 'Primary');
    const b = cloud('vmm-one', 'Secondary');
    const hosts = hostsBy({
      'VMM-One/Primary': [{ name: 'h1', osVersion: '2016' }],
      'vmm-one/Secondary': [{ name: 'h2', osVersion: '2016' }],
    });
    expect(checkAssociation(gold({ hostVersion: '2016' }), a, b, hosts).hostVersion).toBe('2016');
  });

  it('refuses a cloud protecting itself (server names compare case-insensitively)', () => {
    const e = conflict(() =>
      checkAssociation(gold(), NY1, cloud('vmm-newyork', 'GoldCloud1'), allR2),
    );
    expect(e.code).toBe('SS_BAD_INPUT');
    expect(e.details['field']).toBe('targetCloud');
  });

  it('refuses mixed host OS versions, naming the hosts', () => {
    const mixed = hostsBy({
      'VMM-NewYork/GoldCloud1': [
        { name: 'ny-hv1', osVersion: '2012R2' },
        { name: 'ny-hv2', osVersion: '2012' },
      ],
      'VMM-Chicago/GoldCloud2': [{ name: 'ch-hv1', osVersion: '2012R2' }],
    });
    const e = conflict(() => checkAssociation(gold(), NY1, CH2, mixed));
    expect(e.code).toBe('SS_HOST_VERSION_MISMATCH');
    expect(e.message).toContain('VMM-NewYork/GoldCloud1:ny-hv2');
    expect(e.message).toContain(
      '2012R2: VMM-NewYork/GoldCloud1:ny-hv1, VMM-Chicago/GoldCloud2:ch-hv1',
    );
    expect(e.details['hosts']).toEqual(['VMM-NewYork/GoldCloud1:ny-hv2']);
  });

  it('refuses hosts that differ from the version the policy already holds', () => {
    const e = conflict(() => checkAssociation(gold({ hostVersion: '2016' }), NY1, CH2, allR2));
    expect(e.code).toBe('SS_HOST_VERSION_MISMATCH');
    expect(e.details['hosts']).toEqual([
      'VMM-NewYork/GoldCloud1:ny-hv1',
      'VMM-Chicago/GoldCloud2:ch-hv1',
    ]);
  });

  it('treats a host reporting no version as differing from one that does', () => {
    const partly = hostsBy({
      'VMM-NewYork/GoldCloud1': [{ name: 'ny-hv1', osVersion: '2012R2' }],
      'VMM-Chicago/GoldCloud2': [{ name: 'ch-hv1', osVersion: null }],
    });
    expect(conflict(() => checkAssociation(gold(), NY1, CH2, partly)).message).toContain(
      '(none reported)',
    );
    const none = hostsBy({});
    expect(checkAssociation(gold(), NY1, CH2, none).hostVersion).toBeNull();
  });

  it('refuses a cloud already associated with another policy', () => {
    const taken = cloud('VMM-Chicago', 'GoldCloud2', {
      policy: 'Silver',
      role: 'secondary',
      pairedWith: NY1,
    });
    const e = conflict(() => checkAssociation(gold(), NY1, taken, allR2));
    expect(e.code).toBe('SS_CONFLICT');
    expect(e.message).toContain('policy "Silver"');
  });

  it('refuses re-pairing a cloud of the same policy with another cloud', () => {
    const ny = cloud('VMM-NewYork', 'GoldCloud1', {
      policy: 'Gold',
      role: 'primary',
      pairedWith: cloud('VMM-Chicago', 'SilverCloud2'),
    });
    const e = conflict(() => checkAssociation(gold(), ny, CH2, allR2));
    expect(e.code).toBe('SS_CONFLICT');
    expect(e.message).toContain('already paired with VMM-Chicago/SilverCloud2');
  });

  it('refuses swapping the roles of an associated pair', () => {
    const ny = cloud('VMM-NewYork', 'GoldCloud1', {
      policy: 'Gold',
      role: 'primary',
      pairedWith: CH2,
    });
    const ch = cloud('VMM-Chicago', 'GoldCloud2', {
      policy: 'Gold',
      role: 'secondary',
      pairedWith: NY1,
    });
    expect(conflict(() => checkAssociation(gold(), ch, ny, allR2)).code).toBe('SS_CONFLICT');
  });

  it('says when the same pair is associated again', () => {
    const ny = cloud('VMM-NewYork', 'GoldCloud1', {
      policy: 'Gold',
      role: 'primary',
      pairedWith: CH2,
    });
    const ch = cloud('VMM-Chicago', 'GoldCloud2', {
      policy: 'Gold',
      role: 'secondary',
      pairedWith: NY1,
    });
    expect(checkAssociation(gold({ hostVersion: '2012R2' }), ny, ch, allR2)).toEqual({
      hostVersion: '2012R2',
      alreadyAssociated: true,
    });
  });

  it('lets one policy hold several cloud pairs', () => {
    const silver1 = cloud('VMM-NewYork', 'SilverCloud1');
    const silver2 = cloud('VMM-Chicago', 'SilverCloud2');
    const hosts = hostsBy({
      'VMM-NewYork/SilverCloud1': [{ name: 'ny-hv3', osVersion: '2012R2' }],
    });
    const r = checkAssociation(gold({ hostVersion: '2012R2' }), silver1, silver2, hosts);
    expect(r).toEqual({ hostVersion: '2012R2', alreadyAssociated: false });
  });
});

describe('updatePolicy: what may change on a policy (in use or not)', () => {
  const scheduled = validatePolicy(
    { name: 'Gold', copyFrequency: '30s', initial: 'scheduled:2026-11-26T00:00:00Z' },
    NOW,
  );
  const updateRefusal = (input: PolicyUpdateInput): SecondsiteError => {
    try {
      updatePolicy(scheduled, input);
    } catch (e) {
      if (e instanceof SecondsiteError) return e;
      throw e;
    }
    throw new Error('expected a refusal');
  };

  it('moves to kerberos with its default port and asks for the hosts to be paired again', () => {
    const u = updatePolicy(scheduled, { auth: 'kerberos' });
    expect(u.policy).toEqual({ ...scheduled, auth: 'kerberos', port: 8083 });
    expect(u.changed).toEqual(['auth', 'port']);
    expect(u.repair).toBe(true);
    const back = updatePolicy(u.policy, { auth: 'certificate' });
    expect([back.policy.auth, back.policy.port]).toEqual(['certificate', 8084]);
  });

  it('keeps an explicit port with a new auth, and the port when the auth stays', () => {
    expect(updatePolicy(scheduled, { auth: 'kerberos', port: '9083' }).policy.port).toBe(9083);
    const custom = updatePolicy(scheduled, { port: 9084 }).policy;
    expect(updatePolicy(custom, { auth: 'certificate', compression: 'off' }).policy.port).toBe(
      9084,
    );
  });

  it('the same values again change nothing; the coordinator-only field needs no re-pair', () => {
    expect(updatePolicy(scheduled, { auth: 'certificate', port: '8084' })).toMatchObject({
      changed: [],
      repair: false,
    });
    expect(updatePolicy(scheduled, { deleteReplicaOnDisable: 'on' })).toMatchObject({
      changed: ['deleteReplicaOnDisable'],
      repair: false,
    });
  });

  it('does not re-check the scheduled start that may have passed since create', () => {
    const later = updatePolicy(scheduled, { retentionHours: '4' }).policy;
    expect(later.initial).toBe(scheduled.initial);
    expect(later.retentionHours).toBe(4);
  });

  it('refuses bad values naming the field, with the same rules as create', () => {
    expect(updateRefusal({ auth: 'ntlm' }).details['field']).toBe('auth');
    expect(updateRefusal({ port: '0' }).details['field']).toBe('port');
    expect(updateRefusal({ copyFrequency: '1m' }).details['field']).toBe('copyFrequency');
    // The merged policy is checked: app-consistent must stay below the retention.
    const e = updateRefusal({ appConsistentHours: '2' });
    expect([e.details['field'], exitCodeFor(e)]).toEqual(['appConsistentHours', 2]);
    expect(updateRefusal({}).details['field']).toBe('policy');
  });
});
