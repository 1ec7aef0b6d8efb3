import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/secondsite-cli.ts';

describe('demo', () => {
  let dataDir = '';

  it('1. runs the storage path by itself and verifies the guest data', async () => {
    const r = await runCli(['demo', '--duration', '12s']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/nbd\+unix:\/\/\/demo-vm-0\?socket=/);
    expect(r.stdout).toMatch(/nbd\+unix:\/\/\/demo-vm-1\?socket=/);
    const table = r.stdout.slice(r.stdout.indexOf('recovery points of demo-vm'));
    expect(table).toMatch(/ app-consistent /);
    expect(table).toMatch(/ crash-consistent /);
    expect(r.stdout).toMatch(/verified \d+ blocks, 0 mismatches/);
    dataDir = /data folder (\S+)/.exec(r.stdout)?.[1] ?? '';
  });

  it('2. removes its temporary data folder', () => {
    expect(dataDir).not.toBe('');
    expect(existsSync(dataDir)).toBe(false);
  });

  it('3. negative: a bad --duration is refused before anything starts', async () => {
    const r = await runCli(['demo', '--duration', 'soon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('SS_BAD_INPUT');
    expect(r.stdout).toBe('');
  });
});
