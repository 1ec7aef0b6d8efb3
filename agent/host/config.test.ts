import { describe, expect, it } from 'vitest';
import { compileHostConfig } from './config.ts';

describe('compileHostConfig', () => {
  it('compiles a standalone config with defaults, frozen', () => {
    const c = compileHostConfig({ data: 'some/dir', standalone: true, name: 'h1' });
    expect(c).toMatchObject({
      name: 'h1',
      standalone: true,
      certPort: 8084,
      ticketPort: 8083,
      freezeTimeoutMs: 10_000,
      churnBucketMs: 60_000,
      liveSegments: true,
    });
    expect(c.dataDir.endsWith('/some/dir')).toBe(true);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it.each([
    [{}, '--data'],
    [{ data: 'd' }, '--name'],
    [{ data: 'd', name: 'h' }, '--provider'],
    [{ data: 'd', name: 'h', provider: 'nocolon' }, '--provider'],
    [{ data: 'd', standalone: true, provider: 'p:1' }, '--standalone'],
    [{ data: 'd', standalone: true, certPort: '70000' }, '--cert-port'],
    [{ data: 'd', standalone: true, freezeTimeout: '2m' }, '--freeze-timeout'],
    [{ data: 'd', standalone: true, devCopyFrequency: '10ms' }, '--dev-copy-frequency'],
    [{ data: 'd', standalone: true, devChurnBucket: '500ms' }, '--dev-churn-bucket'],
    [{ data: 'd', standalone: true, devChurnBucket: '2m' }, '--dev-churn-bucket'],
    [{ data: 'd', standalone: true, devChurnBucket: 'soon' }, '--dev-churn-bucket'],
    [{ data: 'd', standalone: true, journalCap: 'lots' }, '--journal-cap'],
    [{ data: 'd', standalone: true, liveSegments: 'maybe' }, '--live-segments'],
  ])('refuses %j naming %s', (flags, field) => {
    expect(() => compileHostConfig(flags)).toThrow(
      expect.objectContaining({
        code: 'SS_BAD_INPUT',
        details: expect.objectContaining({ field }),
      }),
    );
  });

  it('turns live segments off', () => {
    const c = compileHostConfig({ data: 'd', standalone: true, liveSegments: 'off' });
    expect(c.liveSegments).toBe(false);
  });

  it('takes a development churn bucket length', () => {
    const c = compileHostConfig({ data: 'd', standalone: true, devChurnBucket: '2s' });
    expect(c.churnBucketMs).toBe(2_000);
  });

  it('compiles the enrolled form; the token file is optional (needed only to enrol)', () => {
    const c = compileHostConfig({ data: 'd', name: 'h', provider: 'p:1', tokenFile: 't' });
    expect(c.provider).toMatchObject({ address: 'p:1' });
    expect(c.provider?.tokenFile?.endsWith('/t')).toBe(true);
    const later = compileHostConfig({ data: 'd', name: 'h', provider: 'p:1' });
    expect(later.provider).toEqual({ address: 'p:1', tokenFile: undefined });
  });
});
