import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NODE_FLAGS, hasNodeFlags } from './node-flags.ts';

describe('NODE_FLAGS', () => {
  it('are what the secondsite executable starts node with', () => {
    const bin = readFileSync(new URL('../../bin/secondsite.mjs', import.meta.url), 'utf8');
    expect(bin.split('\n')[0]).toBe(`#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
  });

  it('are recognised in a process argument list', () => {
    expect(hasNodeFlags([...NODE_FLAGS, '--enable-source-maps'])).toBe(true);
    expect(hasNodeFlags(['--enable-source-maps'])).toBe(false);
  });
});
