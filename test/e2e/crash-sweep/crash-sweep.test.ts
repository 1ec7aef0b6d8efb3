import { expect, it } from 'vitest';
import { runSweep } from '../../crash-sweep/sweep.ts';
import { testSeed } from '../../helpers/seeded-random.ts';

// Real host agent processes killed with SIGKILL, real qemu-io and nbdcopy clients; see
// test/crash-sweep/sweep.ts for what each round checks. `npm run crash-sweep` runs longer.
it('acknowledged-and-flushed writes survive kill -9 and the disk equals the journal replay', async () => {
  const seed = testSeed('crash-sweep');
  const report = await runSweep({ seed, rounds: Number(process.env['SWEEP_ROUNDS'] ?? 5) });
  expect(report.rounds).toBeGreaterThan(0);
  expect(report.recordsReplayed).toBeGreaterThan(0);
});
