import { describe, expect, it } from 'vitest';
import { compileConfig, parseListen } from './config.ts';

describe('coordinator config', () => {
  it.each([
    ['127.0.0.1:9443', { host: '127.0.0.1', port: 9443 }],
    ['0.0.0.0:0', { host: '0.0.0.0', port: 0 }],
    ['[::1]:8443', { host: '::1', port: 8443 }],
    ['coord.example:443', { host: 'coord.example', port: 443 }],
  ])('parses %s', (text, want) => {
    expect(parseListen(text)).toEqual(want);
  });

  it.each(['9443', 'host:', 'host:99999', '[nope]:1', '::1:80'])(
    'refuses %s naming listen',
    (text) => {
      expect(() => parseListen(text)).toThrow(
        expect.objectContaining({ code: 'SS_BAD_INPUT', details: { field: 'listen' } }),
      );
    },
  );

  it('defaults the listen address, freezes, and refuses unknown options', () => {
    const c = compileConfig({ data: 'd' });
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 9443 });
    expect(Object.isFrozen(c)).toBe(true);
    expect(() => compileConfig({ data: 'd', colour: 'red' } as never)).toThrow(
      expect.objectContaining({ code: 'SS_BAD_INPUT' }),
    );
    expect(() => compileConfig({ data: '' })).toThrow(
      expect.objectContaining({ details: { field: 'data' } }),
    );
  });
});
