import { describe, expect, it } from 'vitest';
import { humanSize, table } from './table.ts';

describe('table', () => {
  it('aligns columns to the widest cell', () => {
    expect(
      table(
        ['NAME', 'STATE'],
        [
          ['vm1', 'running'],
          ['longer-name', 'stopped'],
        ],
      ),
    ).toBe('NAME         STATE\nvm1          running\nlonger-name  stopped\n');
  });

  it('formats sizes in binary units', () => {
    expect(humanSize(64 * 1024 * 1024)).toBe('64 MiB');
  });
});
