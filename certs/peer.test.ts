import type { PeerCertificate } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { hostIdentity } from './identity.ts';
import {
  assertPeerCertificateCurrent,
  checkServerIdentityFor,
  fingerprintOfPeerCertificate,
  identityFromPeerCertificate,
  parseSubjectAltName,
} from './peer.ts';

function peer(over: Partial<PeerCertificate>): PeerCertificate {
  return {
    raw: Buffer.from('der'),
    subjectaltname: 'URI:secondsite://v1/host/hv-a1',
    valid_from: 'Jan  1 00:00:00 2026 GMT',
    valid_to: 'Jan  2 00:00:00 2026 GMT',
    ...over,
  } as PeerCertificate;
}

describe('parseSubjectAltName', () => {
  it('splits entries and decodes quoted values without splitting them', () => {
    expect(parseSubjectAltName('DNS:a, URI:secondsite://v1/host/h, IP Address:127.0.0.1')).toEqual([
      { type: 'DNS', value: 'a' },
      { type: 'URI', value: 'secondsite://v1/host/h' },
      { type: 'IP Address', value: '127.0.0.1' },
    ]);
    expect(parseSubjectAltName('DNS:"x, URI:secondsite://v1/host/evil", DNS:b')).toEqual([
      { type: 'DNS', value: 'x, URI:secondsite://v1/host/evil' },
      { type: 'DNS', value: 'b' },
    ]);
    expect(parseSubjectAltName('')).toEqual([]);
  });

  it('refuses text it cannot read', () => {
    for (const bad of ['DNS', 'DNS:"unterminated', 'DNS:"a"b']) {
      expect(() => parseSubjectAltName(bad)).toThrow(
        expect.objectContaining({ code: 'SS_CERT_INVALID' }),
      );
    }
  });
});

describe('identityFromPeerCertificate', () => {
  it('reads the single secondsite URI', () => {
    expect(
      identityFromPeerCertificate(
        peer({ subjectaltname: 'DNS:localhost, URI:secondsite://v1/host/hv-a1' }),
      ),
    ).toEqual(hostIdentity('v1', 'hv-a1'));
  });

  it('refuses a missing certificate, a missing identity and a smuggled one', () => {
    const unauth = expect.objectContaining({ code: 'SS_UNAUTHENTICATED' });
    expect(() => identityFromPeerCertificate(undefined)).toThrow(unauth);
    expect(() => identityFromPeerCertificate({} as PeerCertificate)).toThrow(unauth);
    const invalid = expect.objectContaining({ code: 'SS_CERT_INVALID' });
    expect(() => identityFromPeerCertificate(peer({ subjectaltname: 'DNS:a' }))).toThrow(invalid);
    expect(() =>
      identityFromPeerCertificate(peer({ subjectaltname: 'DNS:"x, URI:secondsite://v1/host/a"' })),
    ).toThrow(invalid);
    expect(() =>
      identityFromPeerCertificate(
        peer({ subjectaltname: 'URI:secondsite://v1/host/a, URI:secondsite://v1/host/b' }),
      ),
    ).toThrow(invalid);
  });
});

describe('peer checks', () => {
  it('checks validity per call', () => {
    const p = peer({});
    expect(() => assertPeerCertificateCurrent(p, Date.UTC(2026, 0, 1, 12))).not.toThrow();
    const invalid = expect.objectContaining({ code: 'SS_CERT_INVALID' });
    expect(() => assertPeerCertificateCurrent(p, Date.UTC(2026, 0, 3))).toThrow(invalid);
    expect(() => assertPeerCertificateCurrent(p, Date.UTC(2025, 11, 31))).toThrow(invalid);
    expect(() => assertPeerCertificateCurrent(peer({ valid_to: 'soon' }), 0)).toThrow(invalid);
  });

  it('fingerprints the raw DER', () => {
    expect(fingerprintOfPeerCertificate(peer({}))).toMatch(/^[0-9a-f]{64}$/);
  });

  it('checks the server by identity, not host name', () => {
    const check = checkServerIdentityFor(hostIdentity('v1', 'hv-a1'));
    expect(check('10.9.9.9', peer({}))).toBeUndefined();
    expect(
      check('localhost', peer({ subjectaltname: 'URI:secondsite://v1/host/hv-a2' })),
    ).toMatchObject({
      code: 'SS_CERT_INVALID',
    });
    expect(check('localhost', peer({ subjectaltname: 'DNS:localhost' }))).toBeInstanceOf(Error);
  });
});
