/**
 * Live segments (FEATURE_LIVE_SEGMENTS) between two host agents in one process (test CA,
 * replication ports on 127.0.0.1:0), driven through their control sockets:
 *
 * 1. Live (both hosts on): a cycle's blocks reach the replica while the guest writes them,
 *    before any cut (hv-b's `received` grows, its points do not); after the cut the new point
 *    reads bit-exact against a shadow copy, and so does every retained point.
 * 2. Live, with the replica restarted in the middle of a segment: what it held is gone, the
 *    sender ships the segment again from its first record, and it is applied once.
 * 3. Sealed (the replica started with `--live-segments off`): nothing travels before the cut,
 *    and the cycles still land bit-exact.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  vmAction,
  vmCreate,
  vmCut,
  vmList,
  vmPair,
  vmPoints,
  vmProtect,
  vmRead,
} from '../../agent/host/main.ts';
import { NbdClient } from '../../common/nbd/client.ts';
import { createTestCa, type TestCa } from '../helpers/test-ca.ts';
import { startInProcessHost, VAULT, type InProcessHost } from '../helpers/replication-lab.ts';
import { seededRandom, testSeed } from '../helpers/seeded-random.ts';
import { waitFor } from '../helpers/wait-for.ts';

const SIZE = 16 * 1024 * 1024;
const BLOCK = 64 * 1024;

for (const mode of ['live', 'sealed'] as const) {
  describe(`cycles shipped ${mode}`, () => {
    let dir: string;
    let ca: TestCa;
    let a: InProcessHost;
    let b: InProcessHost;
    const replicaFlags = mode === 'live' ? {} : { liveSegments: 'off' };

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), `ss-live-${mode}-`));
      ca = createTestCa();
      a = await startInProcessHost(ca, 'hv-a', join(dir, 'a'));
      b = await startInProcessHost(ca, 'hv-b', join(dir, 'b'), replicaFlags);
    });

    afterAll(async () => {
      await a?.stop();
      await b?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    const replication = async (h: InProcessHost) =>
      (await vmList({ data: h.data })).find((v) => v.name === 'vm1')?.replication;

    async function pointBytes(pointId: string, n: number): Promise<Buffer> {
      const out = join(dir, `read-${n}.raw`);
      await vmRead({ data: b.data, name: 'vm1', disk: '0', point: pointId, out });
      return readFileSync(out);
    }

    /** Pairs vm1 hv-a → hv-b (zero baseline), protects and starts it; its NBD client. */
    async function startVm(): Promise<NbdClient> {
      await vmPair({
        data: b.data,
        name: 'vm1',
        role: 'replica',
        peerHost: 'hv-a',
        peerAddress: `127.0.0.1:${a.port}`,
        vault: VAULT,
        disk: ['16MiB'],
      });
      await vmCreate({ data: a.data, name: 'vm1', disk: ['16MiB'], nic: [] });
      await vmPair({
        data: a.data,
        name: 'vm1',
        role: 'primary',
        peerHost: 'hv-b',
        peerAddress: `127.0.0.1:${b.port}`,
        vault: VAULT,
        compression: 'off',
      });
      await vmProtect({ data: a.data, name: 'vm1' });
      const vm = await vmAction('start', { data: a.data, name: 'vm1' });
      return NbdClient.connect(vm.disks[0]!.nbd);
    }

    it('ships each cycle and keeps every point bit-exact', async () => {
      const r = seededRandom(testSeed(`live-segments-${mode}`));
      const nbd = await startVm();
      const shadow = Buffer.alloc(SIZE);
      const history = new Map<string, Buffer>();
      try {
        for (let cycle = 0; cycle < 3; cycle++) {
          const before = (await replication(b))?.received?.rawBytes ?? 0;
          const pointsBefore = (await vmPoints({ data: b.data, name: 'vm1' })).length;
          let written = 0;
          for (let k = 0; k < 24; k++) {
            // Some blocks twice in one cycle: the later write must win on the replica.
            const off = r.int(SIZE / BLOCK / 4) * BLOCK;
            const data = r.next() < 0.1 ? Buffer.alloc(BLOCK) : r.fill(Buffer.alloc(BLOCK));
            await nbd.write(off, data);
            data.copy(shadow, off);
            written += BLOCK;
          }
          await nbd.flush();
          if (mode === 'live') {
            // The blocks travel while they are written: all of them are on hv-b before the
            // cut, held, not applied.
            await waitFor(
              async () => ((await replication(b))?.received?.rawBytes ?? 0) - before >= written,
              { what: `cycle ${cycle}'s ${written} bytes on hv-b before the cut` },
            );
          } else {
            await new Promise((res) => setTimeout(res, 300));
            expect((await replication(b))?.received?.rawBytes ?? 0).toBe(before);
          }
          expect((await vmPoints({ data: b.data, name: 'vm1' })).length).toBe(pointsBefore);
          const point = await vmCut({ data: a.data, name: 'vm1' });
          history.set(point.id, Buffer.from(shadow));
          await waitFor(async () => ((await replication(a))?.lastAckedSeq ?? 0) >= point.segment, {
            what: `segment ${point.segment} acknowledged`,
          });
          expect((await pointBytes(point.id, cycle)).equals(shadow)).toBe(true);
        }
      } finally {
        await nbd.close();
      }
      const retained = await vmPoints({ data: b.data, name: 'vm1' });
      expect(retained.map((p) => p.id)).toEqual([...history.keys()]);
      for (const [i, p] of retained.entries()) {
        expect((await pointBytes(p.id, 10 + i)).equals(history.get(p.id)!)).toBe(true);
      }
    });

    if (mode === 'live') {
      it('ships a segment again from its start after the replica restarts in its middle', async () => {
        const r = seededRandom(testSeed('live-segments-restart'));
        const vm = (await vmList({ data: a.data })).find((v) => v.name === 'vm1')!;
        const nbd = await NbdClient.connect(vm.disks[0]!.nbd);
        const shadow = await pointBytes(
          (await vmPoints({ data: b.data, name: 'vm1' })).at(-1)!.id,
          50,
        );
        const pointsBefore = (await vmPoints({ data: b.data, name: 'vm1' })).length;
        try {
          const write = async (n: number) => {
            for (let k = 0; k < n; k++) {
              const off = r.int(SIZE / BLOCK) * BLOCK;
              const data = r.fill(Buffer.alloc(BLOCK));
              await nbd.write(off, data);
              data.copy(shadow, off);
            }
            await nbd.flush();
          };
          const before = (await replication(b))?.received?.rawBytes ?? 0;
          await write(16);
          await waitFor(
            async () => ((await replication(b))?.received?.rawBytes ?? 0) - before >= 16 * BLOCK,
            { what: 'the first half of the segment on hv-b' },
          );
          // The replica goes away with half a segment held, and comes back on the same port.
          const port = b.port;
          await b.stop();
          b = await startInProcessHost(ca, 'hv-b', join(dir, 'b'), {
            ...replicaFlags,
            certPort: String(port),
          });
          // Nothing of what the old process held survived: the sender ships the segment again
          // from its first record (the new process counts from zero).
          await waitFor(
            async () => ((await replication(b))?.received?.rawBytes ?? 0) >= 16 * BLOCK,
            { what: 'the segment sent again from its start', timeoutMs: 60_000 },
          );
          await write(16);
          const point = await vmCut({ data: a.data, name: 'vm1' });
          await waitFor(async () => ((await replication(a))?.lastAckedSeq ?? 0) >= point.segment, {
            what: `segment ${point.segment} acknowledged after the restart`,
            timeoutMs: 60_000,
          });
          const points = await vmPoints({ data: b.data, name: 'vm1' });
          expect(points.length).toBe(pointsBefore + 1); // applied once
          expect((await pointBytes(point.id, 60)).equals(shadow)).toBe(true);
        } finally {
          await nbd.close();
        }
      });
    }
  });
}
