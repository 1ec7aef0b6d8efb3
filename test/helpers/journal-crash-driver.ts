/**
 * Child process for test/component/journal-crash.test.ts: opens a VM journal over the disks in
 * DIR and performs the seeded operation stream, to be killed with SIGKILL at any moment.
 *
 *   node bin/run-ts.mjs test/helpers/journal-crash-driver.ts DIR SEED COUNT [CAP_BYTES]
 *
 * stdout, one line each, written synchronously: `flushed I` once operation I (a flush) has
 * completed, `cut I SEQ` once the cut at operation I resolved, `done` after the last
 * operation; then it idles until killed.
 */
import { writeSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../common/log/log.ts';
import { systemClock } from '../../common/time/clock.ts';
import { openVmJournal } from '../../agent/host/journal/vm-journal.ts';
import { RawDisk } from '../../agent/host/vm/raw-disk.ts';
import { CRASH_DISK_SIZES, journalTestOps } from './journal-ops.ts';

const [dir, seedText, countText, capText] = process.argv.slice(2);
if (!dir || !seedText || !countText) {
  process.stderr.write('usage: journal-crash-driver.ts DIR SEED COUNT [CAP_BYTES]\n');
  process.exit(2);
}
const say = (line: string) => writeSync(1, `${line}\n`);
const disks = CRASH_DISK_SIZES.map((_, i) => RawDisk.open(join(dir, `d${i}.img`)));
const journal = await openVmJournal({
  dir: join(dir, 'journal'),
  vmId: 'crash-vm',
  disks,
  capBytes: capText ? Number(capText) : 2 ** 40,
  clock: systemClock,
  log: silentLogger,
});
let i = 0;
for (const op of journalTestOps(Number(seedText), Number(countText), CRASH_DISK_SIZES)) {
  if (op.kind === 'write') await journal.disk(op.disk).write(op.offset, op.data, op.fua);
  else if (op.kind === 'trim') await journal.disk(op.disk).trim(op.offset, op.length, op.fua);
  else if (op.kind === 'zero')
    await journal.disk(op.disk).writeZeroes(op.offset, op.length, op.fua);
  else if (op.kind === 'flush') {
    await journal.disk(op.disk).flush();
    say(`flushed ${i}`);
  } else if (journal.state === 'journaling') {
    // Not awaited: later writes race the cut's asynchronous second half, as in production.
    const at = i;
    journal.cut({ type: 'crash-consistent' }).then(
      (p) => say(`cut ${at} ${p.segment}`),
      (e: unknown) => say(`cut-failed ${at} ${String(e)}`),
    );
  }
  i++;
  if (i % 8 === 0) await new Promise((r) => setImmediate(r));
}
say(`done ${journal.state}`);
setInterval(() => {}, 1 << 30);
