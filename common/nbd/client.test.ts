import { describe, expect, it } from 'vitest';
import { isSecondsiteError } from '../errors/errors.ts';
import { parseNbdUnixUri } from './client.ts';

describe('parseNbdUnixUri', () => {
  it('splits export name and socket path', () => {
    expect(parseNbdUnixUri('nbd+unix:///disk0?socket=/run/ss/vm1/disk0.sock')).toEqual({
      exportName: 'disk0',
      socketPath: '/run/ss/vm1/disk0.sock',
    });
  });

  it('allows the empty (default) export name and decodes escapes', () => {
    expect(parseNbdUnixUri('nbd+unix:///?socket=/tmp/a%20b.sock')).toEqual({
      exportName: '',
      socketPath: '/tmp/a b.sock',
    });
    expect(parseNbdUnixUri('nbd+unix:///vm%2Fdisk?socket=/s').exportName).toBe('vm/disk');
  });

  it.each(['not a uri', 'nbd://host/disk0', 'nbd+unix:///disk0', 'nbd+unix:///disk0?socket='])(
    'refuses %s with SS_BAD_INPUT',
    (uri) => {
      let err: unknown;
      try {
        parseNbdUnixUri(uri);
      } catch (e) {
        err = e;
      }
      expect(isSecondsiteError(err) && err.code).toBe('SS_BAD_INPUT');
    },
  );
});
