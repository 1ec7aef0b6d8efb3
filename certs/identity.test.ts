import { describe, expect, it } from 'vitest';
import {
  coordinatorIdentity,
  formatIdentity,
  hostIdentity,
  identityFromUris,
  parseIdentity,
  providerIdentity,
  sameIdentity,
  tryParseIdentity,
} from './identity.ts';

describe('identity', () => {
  it('formats and parses the three kinds', () => {
    const cases = [
      [hostIdentity('v1', 'hv-a1'), 'secondsite://v1/host/hv-a1'],
      [providerIdentity('prod-eu', 'vmm01.lab'), 'secondsite://prod-eu/provider/vmm01.lab'],
      [coordinatorIdentity('v1'), 'secondsite://v1/coordinator'],
    ] as const;
    for (const [identity, uri] of cases) {
      expect(formatIdentity(identity)).toBe(uri);
      expect(parseIdentity(uri)).toEqual(identity);
    }
  });

  it.each([
    ['empty', ''],
    ['other scheme', 'spiffe://v1/host/a'],
    ['uppercase scheme', 'SECONDSITE://v1/host/a'],
    ['uppercase vault', 'secondsite://V1/host/a'],
    ['uppercase name', 'secondsite://v1/host/A'],
    ['unknown kind', 'secondsite://v1/guest/a'],
    ['missing name', 'secondsite://v1/host/'],
    ['no name segment', 'secondsite://v1/host'],
    ['coordinator with a name', 'secondsite://v1/coordinator/x'],
    ['extra segment', 'secondsite://v1/host/a/b'],
    ['trailing slash', 'secondsite://v1/host/a/'],
    ['empty vault', 'secondsite:///host/a'],
    ['vault with a port', 'secondsite://v1:80/host/a'],
    ['vault with userinfo', 'secondsite://u@v1/host/a'],
    ['vault with a dot', 'secondsite://v.1/host/a'],
    ['vault starting with -', 'secondsite://-v/host/a'],
    ['name with ..', 'secondsite://v1/host/a..b'],
    ['name of ..', 'secondsite://v1/host/..'],
    ['percent-encoding', 'secondsite://v1/host/a%2fb'],
    ['space', 'secondsite://v1/host/a b'],
    ['query', 'secondsite://v1/host/a?x=1'],
    ['fragment', 'secondsite://v1/host/a#x'],
    ['name ending in -', 'secondsite://v1/host/a-'],
    ['64-character name', `secondsite://v1/host/${'a'.repeat(64)}`],
    ['64-character vault', `secondsite://${'a'.repeat(64)}/host/a`],
    ['newline', 'secondsite://v1/host/a\n'],
    ['leading space', ' secondsite://v1/host/a'],
  ])('refuses %s', (_why, uri) => {
    expect(() => parseIdentity(uri)).toThrow(expect.objectContaining({ code: 'SS_BAD_INPUT' }));
    expect(tryParseIdentity(uri)).toBeUndefined();
  });

  it('accepts names at the length limit', () => {
    const name = `a${'-'.repeat(61)}b`;
    expect(parseIdentity(`secondsite://v1/host/${name}`)).toEqual(hostIdentity('v1', name));
  });

  it('refuses to format an identity outside the charset', () => {
    expect(() => formatIdentity(hostIdentity('v1', 'Hv/1'))).toThrow();
    expect(() => formatIdentity(hostIdentity('V1', 'hv'))).toThrow();
  });

  it('compares identities exactly', () => {
    expect(sameIdentity(hostIdentity('v1', 'a'), hostIdentity('v1', 'a'))).toBe(true);
    expect(sameIdentity(hostIdentity('v1', 'a'), providerIdentity('v1', 'a'))).toBe(false);
    expect(sameIdentity(hostIdentity('v1', 'a'), hostIdentity('v2', 'a'))).toBe(false);
  });

  it('takes the single secondsite URI among a certificate URIs', () => {
    expect(identityFromUris(['https://x', 'secondsite://v1/host/a'])).toEqual(
      hostIdentity('v1', 'a'),
    );
    const invalid = expect.objectContaining({ code: 'SS_CERT_INVALID' });
    expect(() => identityFromUris([])).toThrow(invalid);
    expect(() => identityFromUris(['secondsite://v1/host/a', 'secondsite://v1/host/b'])).toThrow(
      invalid,
    );
    expect(() => identityFromUris(['secondsite://v1/host/A'])).toThrow(invalid);
    expect(() => identityFromUris(['SecondSite://v1/host/a'])).toThrow(invalid);
  });
});
