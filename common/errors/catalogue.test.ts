import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from './catalogue.ts';

describe('error catalogue', () => {
  it('docs/errors.md names every code with what to do', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const missing = ERROR_CODES.filter((code) => !doc.includes(`\`${code}\``));
    expect(missing).toEqual([]);
  });

  it('docs/errors.md names no code the catalogue lacks', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const named = [...doc.matchAll(/`(SS_[A-Z_]+)`/g)].map((m) => m[1]);
    expect(named.filter((c) => !ERROR_CODES.includes(c as never))).toEqual([]);
  });
});
