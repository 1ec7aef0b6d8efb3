import { describe, expect, it } from 'vitest';
import type { ItemView } from '../../common/api-client/index.ts';
import { finalLine, screenLines, statusBlock, tryNext } from './status.ts';

const item = (over: Partial<ItemView> = {}): ItemView => ({
  vm: 'VM1',
  state: 'protected',
  health: 'normal',
  policy: 'gold',
  sourceServer: 'VMM-NewYork',
  targetServer: 'VMM-Chicago',
  sourceHost: 'ny-hv1',
  targetHost: 'chi-hv1',
  sourceCloud: 'GoldCloud1',
  targetCloud: 'GoldCloud2',
  lastCycleAt: '2026-01-01T00:00:06.000Z',
  latestRecoveryPoint: { id: 'p3', time: '2026-01-01T00:00:06.000Z', type: 'crash-consistent' },
  rpoSeconds: 4,
  errors: [],
  initialReplication: { bytesDone: 3 * 1024 * 1024, bytesTotal: 4 * 1024 * 1024 },
  epoch: 1,
  testFailover: null,
  failover: null,
  ...over,
});

describe('demo status', () => {
  it('shows the items table, initial copy progress, reasons and the workloads', () => {
    const text = statusBlock(
      new Date('2026-01-01T10:20:30Z'),
      [
        item(),
        item({
          vm: 'VM2',
          health: 'warning',
          initialReplication: null,
          errors: [
            { code: 'stale-point', message: 'the newest point is old', action: 'check the hosts' },
          ],
        }),
      ],
      [
        { vm: 'VM1', line: '4s running: 8 MiB in 128 writes, 2.0 MB/s' },
        { vm: 'VM2', line: '' },
      ],
      'Ctrl-C to stop',
    );
    expect(text).toContain('10:20:30 UTC · Ctrl-C to stop');
    expect(text).toMatch(/^VM1\s+protected\s+normal\s+gold\s/m);
    expect(text).toMatch(/^VM2\s+protected\s+warning\s/m);
    expect(text).toContain('initial copy: VM1 75% (3 MiB of 4 MiB)\n');
    expect(text).toContain(
      'VM2 stale-point: the newest point is old (what to do: check the hosts)',
    );
    expect(text).toContain('workload VM1: 4s running: 8 MiB in 128 writes, 2.0 MB/s\n');
    expect(text).toContain('workload VM2: starting\n');
  });

  it('says when no initial copy has started', () => {
    expect(statusBlock(new Date(), [item({ initialReplication: null })], [], '')).toContain(
      'initial copy: not started yet',
    );
  });

  it('ends with one line per item: state, health, point count', () => {
    expect(finalLine(item(), 3)).toBe(
      '  VM1: protected, health normal, 3 recovery points, latest 2026-01-01T00:00:06.000Z (crash-consistent)\n',
    );
    expect(finalLine(item({ latestRecoveryPoint: null, state: 'initial-replication' }), 1)).toBe(
      '  VM1: initial-replication, health normal, 1 recovery point\n',
    );
  });

  it('names the admin file and an NBD URI in the commands to try', () => {
    const text = tryNext('/tmp/x/coordinator/admin.json', 'nbd+unix:///VM1-0?socket=/s');
    expect(text).toContain('export SECONDSITE_CONFIG=/tmp/x/coordinator/admin.json');
    expect(text).toContain("qemu-io -f raw -r 'nbd+unix:///VM1-0?socket=/s'");
    expect(text).toContain('secondsite item list --vault demo');
  });
});

describe('screenLines', () => {
  it('counts rows of a block, long lines wrapping at the terminal width', () => {
    expect(screenLines('a\nbb\n', undefined)).toBe(2);
    expect(screenLines(`${'x'.repeat(25)}\n\nshort\n`, 10)).toBe(5);
  });
});

describe('finalLine without a count', () => {
  it('says why the recovery points are unknown', () => {
    expect(finalLine(item({ latestRecoveryPoint: null }), 'no answer within 10 s')).toBe(
      '  VM1: protected, health normal, recovery points unknown: no answer within 10 s\n',
    );
  });
});
