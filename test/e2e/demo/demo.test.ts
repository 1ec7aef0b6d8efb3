import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/secondsite-cli.ts';

/** The recovery point count the demo printed for `vm` in its final state, or -1. */
function finalPoints(stdout: string, vm: string): number {
  const m = new RegExp(`^  ${vm}: protected, health normal, (\\d+) recovery points?`, 'm').exec(
    stdout,
  );
  return m?.[1] === undefined ? -1 : Number(m[1]);
}

describe('demo', () => {
  let folder = '';

  it('1. runs two sites, protects VM1 and VM2 under the workload, verifies and stops everything', async () => {
    const r = await runCli(['demo', '--duration', '30s']);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    folder = /in folder (\S+)/.exec(r.stdout)?.[1] ?? '';
    expect(r.stdout).toMatch(/coordinator listening on https:\/\/127\.0\.0\.1:\d+/);
    expect(r.stdout).toContain('host ny-hv1 enrolled with VMM-NewYork on 127.0.1.1');
    expect(r.stdout).toContain('host chi-hv1 enrolled with VMM-Chicago on 127.0.2.1');
    expect(r.stdout).toMatch(/nbd\+unix:\/\/\/VM1-0\?socket=/);
    expect(r.stdout).toMatch(/^VM1\s+\S+\s+\S+\s+gold\s/m); // the live items table
    expect(r.stdout).toContain(`export SECONDSITE_CONFIG=${folder}/coordinator/admin.json`);
    const final = r.stdout.slice(r.stdout.indexOf('\nFinal state\n'));
    expect(finalPoints(final, 'VM1')).toBeGreaterThanOrEqual(1);
    expect(finalPoints(final, 'VM2')).toBeGreaterThanOrEqual(1);
    expect(r.stdout).toMatch(/workload VM1: .*verified [1-9]\d* blocks, 0 mismatches/);
    expect(r.stdout).toMatch(/workload VM2: .*verified [1-9]\d* blocks, 0 mismatches/);
    // The failover tour on VM1: test failover, planned failover, failback, each a job.
    const tour = r.stdout.slice(r.stdout.indexOf('\nFailover: the day it is needed, on VM1\n'));
    expect(tour).toMatch(/test failover .* done in [\d.]+ s .*VM1 is protected/);
    expect(tour).toMatch(/VM1-test runs with role test: nbd\+unix:/);
    expect(tour).toMatch(
      /planned failover to Chicago .* done .*VM1 is failed-over, running at VMM-Chicago/,
    );
    expect(tour).toMatch(
      /reverse replication \(Chicago → New York.* VM1 is protected, running at VMM-Chicago/,
    );
    expect(tour).toMatch(
      /reverse replication \(New York → Chicago again\) … done .*VM1 is protected, running at VMM-NewYork/,
    );
    for (const p of [
      'host chi-hv1',
      'host ny-hv1',
      'provider VMM-Chicago',
      'provider VMM-NewYork',
      'coordinator',
    ]) {
      expect(r.stdout).toContain(`  ${p}: stopped\n`);
    }
    expect(r.stdout).toContain('secondsite demo: done; every process stopped cleanly');
  });

  it('2. removes its temporary folder', () => {
    expect(folder).not.toBe('');
    expect(existsSync(folder)).toBe(false);
  });

  it('3. --single-host runs the storage path by itself and verifies the guest data', async () => {
    const r = await runCli(['demo', '--single-host', '--duration', '12s']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/nbd\+unix:\/\/\/demo-vm-0\?socket=/);
    expect(r.stdout).toMatch(/nbd\+unix:\/\/\/demo-vm-1\?socket=/);
    const table = r.stdout.slice(r.stdout.indexOf('recovery points of demo-vm'));
    expect(table).toMatch(/ app-consistent /);
    expect(table).toMatch(/ crash-consistent /);
    expect(r.stdout).toMatch(/verified \d+ blocks, 0 mismatches/);
    const data = /data folder (\S+)/.exec(r.stdout)?.[1] ?? '';
    expect(data).not.toBe('');
    expect(existsSync(data)).toBe(false);
  });

  it('4. negative: a bad --duration is refused before anything starts', async () => {
    const r = await runCli(['demo', '--duration', 'soon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('SS_BAD_INPUT');
    expect(r.stderr).toContain('--duration');
    expect(r.stdout).toBe('');
  });
});
