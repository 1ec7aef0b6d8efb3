/**
 * A benchmark server process: serves one disk of SIZE bytes through our NBD server, journaled
 * (`journal`) or plain (`raw`), prints `{"uri": …}` on stdout when ready and runs until
 * SIGTERM. It runs in its own process so the benchmark's client and bookkeeping never share
 * the server's event loop. A line `cut` on stdin cuts a recovery point (journal mode) and
 * answers `{"cutMs": …}`: the time the cut takes to seal the segment and bring the raw disk
 * up to date, which the journal defers from the write path to the cut.
 *   node bin/run-ts.mjs bench/serve-export.ts DIR journal|raw SIZE
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { silentLogger } from '../common/log/log.ts';
import { systemClock } from '../common/time/clock.ts';
import { serveExport } from '../agent/host/nbd/server.ts';
import { openVmJournal } from '../agent/host/journal/vm-journal.ts';
import { RawDisk, createSparseImage } from '../agent/host/vm/raw-disk.ts';
import type { BlockDevice } from '../agent/host/nbd/block-device.ts';

const [dir, mode, sizeText] = process.argv.slice(2);
if (!dir || (mode !== 'journal' && mode !== 'raw') || !sizeText) {
  process.stderr.write('usage: serve-export.ts DIR journal|raw SIZE\n');
  process.exit(2);
}
const diskPath = join(dir, 'disk0.raw');
createSparseImage(diskPath, Number(sizeText));
const raw = RawDisk.open(diskPath);
let device: BlockDevice = raw;
let closeJournal = async (): Promise<void> => {};
let cut = async (): Promise<void> => {};
if (mode === 'journal') {
  const journalDir = join(dir, 'journal');
  mkdirSync(journalDir, { recursive: true });
  const journal = await openVmJournal({
    dir: journalDir,
    vmId: 'bench',
    disks: [raw],
    // Large enough that a 2 GiB benchmark never overflows into bitmap mode.
    capBytes: 64 * 2 ** 30,
    clock: systemClock,
    log: silentLogger,
  });
  device = journal.disk(0);
  closeJournal = () => journal.close();
  cut = async () => {
    await journal.cut({ type: 'crash-consistent' });
  };
}
const exp = await serveExport({
  socketPath: join(dir, 'disk0.sock'),
  exportName: 'disk0',
  device,
  log: silentLogger,
});
process.stdout.write(`${JSON.stringify({ uri: exp.uri })}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== 'cut') continue;
  const start = process.hrtime.bigint();
  await cut();
  process.stdout.write(
    `${JSON.stringify({ cutMs: Number(process.hrtime.bigint() - start) / 1e6 })}\n`,
  );
}
process.once('SIGTERM', () => {
  void (async () => {
    await exp.close();
    await closeJournal();
    if (mode === 'raw') await raw.close();
    process.exit(0);
  })();
});
