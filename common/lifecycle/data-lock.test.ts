import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lockDataFolder } from './data-lock.ts';

describe('lockDataFolder', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
  const fresh = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'ss-lock-'));
    dirs.push(d);
    return d;
  };

  it('refuses a second lock on the same folder, even from the same process', () => {
    const dir = fresh();
    const first = lockDataFolder(dir);
    expect(() => lockDataFolder(dir)).toThrow(/in use/);
    expect(existsSync(join(dir, 'LOCK.pid'))).toBe(true);
    first.release();
    lockDataFolder(dir).release();
  });
});
