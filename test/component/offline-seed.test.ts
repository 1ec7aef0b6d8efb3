/**
 * Offline initial replication (R15, issue 8 item 1) through relayed host commands: a provider
 * and two host agents in-process (relay-lab.ts). hv-a's app1 holds data; it is paired paused
 * (what enable does for an offline policy), exported into a folder with export_vm, the folder
 * is carried with a plain `cp -r`, hv-b imports it with import_vm, hv-a is seeded and resumed:
 * only the writes made after the export ship, and the replica ends bit-exact.
 * Negative: a copy with one chunk damaged, and one with a file cut short, are refused naming
 * the file and the chunk, and leave the replica untouched.
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  openSync,
  closeSync,
  readFileSync,
  statSync,
  truncateSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartedProvider } from '../../agent/provider/main.ts';
import type { OfflineManifest } from '../../agent/host/sync/offline-manifest.ts';
import type { ProviderLab } from '../helpers/provider-lab.ts';
import {
  cutAndShip,
  imagesIdentical,
  nbdOfVm,
  pointToFile,
  qemuIoFlushed,
  replicationPortOf,
  reportedVm,
  startRelayLab,
  stopRelayLab,
  vmRunning,
  type LinkedHost,
  type RelayLab,
  replicaPairing,
  primaryPairing,
} from '../helpers/relay-lab.ts';

const MiB = 1024 * 1024;
const VM = 'app1';

let lab: ProviderLab;
let provider: StartedProvider;
let a: LinkedHost;
let b: LinkedHost;
let relay: RelayLab['relay'];

const qemuIo = (...cmds: string[]): Promise<void> => qemuIoFlushed(nbdOfVm(a, VM), ...cmds);

function cpR(from: string, to: string): void {
  const r = spawnSync('cp', ['-r', from, to], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
}

beforeAll(async () => {
  ({ lab, provider, a, b, relay } = await startRelayLab());
});

afterAll(() => stopRelayLab(lab, a, b));

describe('offline initial replication', () => {
  const exportDir = (): string => lab.path('export');
  const importDir = (): string => lab.path('import');

  it('exports, is carried with cp -r, refuses damaged copies, imports; then only changes ship', async () => {
    await vmRunning(provider, 'hv-a', VM);
    const bPort = await replicationPortOf(provider, 'hv-b');
    await qemuIo('write -P 0xab 0 1M', 'write -P 0x3c 9M 256k', 'write -P 0x71 15M 1M');

    const rep = await relay('hv-b', {
      pairVm: replicaPairing(VM, 'hv-a', 16 * MiB, { copyFrequencySeconds: 30 }),
    });
    expect(rep.error ?? null).toBeNull();
    // Offline: paired paused, no initial copy over the network.
    const pri = await relay('hv-a', {
      pairVm: primaryPairing(VM, 'hv-b', `127.0.2.1:${bPort}`, { startInitialCopy: false }),
    });
    expect(pri.error ?? null).toBeNull();
    expect(pri.host?.vm).toMatchObject({ paused: true, protected: true });

    // Export: sparse, with a manifest; asked again with the same id it does nothing.
    const exp = await relay('hv-a', { exportVm: { name: VM, path: exportDir(), exportId: 'x1' } });
    expect(exp.error ?? null).toBeNull();
    const folder = join(exportDir(), VM);
    const manifest = JSON.parse(
      readFileSync(join(folder, 'manifest.json'), 'utf8'),
    ) as OfflineManifest;
    expect(manifest).toMatchObject({ vm: VM, exportId: 'x1', chunkBytes: MiB });
    expect(manifest.baseSeq).toBeGreaterThan(0);
    const chunks = manifest.disks[0]!.chunks;
    expect(chunks).toHaveLength(16);
    expect(chunks.filter((c) => c !== null)).toHaveLength(3); // chunks 0, 9 and 15 hold data
    expect(statSync(join(folder, 'disk-0.img')).size).toBe(16 * MiB);
    const mtime = statSync(join(folder, 'manifest.json')).mtimeMs;
    const again = await relay('hv-a', {
      exportVm: { name: VM, path: exportDir(), exportId: 'x1' },
    });
    expect(again.error ?? null).toBeNull();
    expect(statSync(join(folder, 'manifest.json')).mtimeMs).toBe(mtime);

    // Writes after the export: only these travel once the replica is seeded.
    await qemuIo('write -P 0x5c 5M 64k', 'write -z 15M 4k');

    // One chunk damaged in a copy: refused, naming the file and the chunk.
    const damaged = lab.path('damaged');
    cpR(exportDir(), damaged);
    const fd = openSync(join(damaged, VM, 'disk-0.img'), 'r+');
    writeSync(fd, Buffer.from('x'), 0, 1, 9 * MiB + 100);
    closeSync(fd);
    const bad = await relay('hv-b', { importVm: { name: VM, path: damaged, exportId: 'x1' } });
    expect(bad.error).toMatchObject({ code: 'SS_IMPORT_INVALID' });
    expect(bad.error?.message).toContain(join(damaged, VM, 'disk-0.img'));
    expect(bad.error?.message).toContain('chunk 9');

    // A file cut short: an incomplete copy.
    const short = lab.path('short');
    cpR(exportDir(), short);
    truncateSync(join(short, VM, 'disk-0.img'), 12 * MiB);
    const cut = await relay('hv-b', { importVm: { name: VM, path: short, exportId: 'x1' } });
    expect(cut.error).toMatchObject({ code: 'SS_IMPORT_INVALID' });
    expect(cut.error?.message).toContain('incomplete');

    // Another export id than the one expected: refused.
    const other = await relay('hv-b', {
      importVm: { name: VM, path: exportDir(), exportId: 'x0' },
    });
    expect(other.error).toMatchObject({ code: 'SS_IMPORT_INVALID' });

    // Nothing at the import path yet: not found, with what to do.
    const missing = await relay('hv-b', {
      importVm: { name: VM, path: importDir(), exportId: 'x1' },
    });
    expect(missing.error).toMatchObject({ code: 'SS_NOT_FOUND' });

    // The good copy.
    cpR(exportDir(), importDir());
    expect(existsSync(join(importDir(), VM, 'manifest.json'))).toBe(true);
    const imp = await relay('hv-b', { importVm: { name: VM, path: importDir(), exportId: 'x1' } });
    expect(imp.error ?? null).toBeNull();
    expect(await b.agent.replication.points(VM)).toEqual([]);

    // Seeding names the export; another id is refused.
    const wrongSeed = await relay('hv-a', { seedVm: { name: VM, exportId: 'nope' } });
    expect(wrongSeed.error).toMatchObject({ code: 'SS_CONFLICT' });
    const seed = await relay('hv-a', { seedVm: { name: VM, exportId: 'x1' } });
    expect(seed.error ?? null).toBeNull();
    expect(seed.host?.vm?.replication).toMatchObject({ baseline: 'copied' });

    const resumed = await relay('hv-a', { pauseVm: { name: VM, paused: false } });
    expect(resumed.error ?? null).toBeNull();
    const point = await cutAndShip(provider, a, VM);
    const status = reportedVm(provider, 'hv-a', VM)?.replication;
    // No initial copy ran: the copy counters stay at zero.
    expect(Number(status?.copyBytesTotal ?? 0)).toBe(0);
    const out = await pointToFile(b, VM, point.id, lab.path('read-seeded.raw'));
    expect(await imagesIdentical(out, nbdOfVm(a, VM))).toBe(true);
  });
});
