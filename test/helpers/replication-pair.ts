/**
 * Two host agents' replication sides in one process over real gRPC with mutual TLS: host hv-b
 * serves the replication port on 127.0.0.1:0 with a real recovery store and the real copy and
 * resync engines behind it (sync-lab.ts's replica); host hv-a is the client. VM "vm-1" is
 * paired with hv-a. Used by the InitialCopy and ResyncHashes component tests.
 */
import { join } from 'node:path';
import { formatIdentity } from '../../certs/identity.ts';
import { silentLogger } from '../../common/log/log.ts';
import { readCoalescedSegment } from '../../agent/host/journal/segment-coalesce.ts';
import { InitialCopyTarget } from '../../agent/host/sync/initial-copy-target.ts';
import { ResyncTarget } from '../../agent/host/sync/resync-target.ts';
import {
  createReplicationClient,
  type ReplicationClient,
  type SyncClient,
} from '../../agent/host/transport/replication-client.ts';
import {
  createReplicationServer,
  type ReplicationServer,
} from '../../agent/host/transport/replication-server.ts';
import type { LabJournal, Replica } from './sync-lab.ts';
import { createTestCa, hostIdentity, type Identity, type TestCa } from './test-ca.ts';

export const VM = 'vm-1';
export const SERVER = hostIdentity('v1', 'hv-b');
export const SENDER = hostIdentity('v1', 'hv-a');

export interface Pair {
  readonly ca: TestCa;
  readonly server: ReplicationServer;
  readonly port: number;
  /** A client of hv-b as `who` (default hv-a, the paired host). */
  client(who?: Identity): ReplicationClient & SyncClient;
  /** Ships every sealed segment after `afterSeq` over a ShipSegments stream, in order. */
  ship(j: LabJournal, afterSeq: number): Promise<number>;
  close(): Promise<void>;
}

export async function startPair(
  rep: () => Replica,
  opts: { dir: string; flushEveryBytes?: number },
): Promise<Pair> {
  const ca = createTestCa();
  const cert = ca.issue(SERVER);
  const clients: ReplicationClient[] = [];
  const server = createReplicationServer({
    address: '127.0.0.1',
    port: 0,
    tls: { caPem: ca.rootCertPem, certPem: cert.chainPem, keyPem: cert.keyPem },
    authorize: (caller, vmId) => vmId === VM && caller.uri === formatIdentity(SENDER),
    handlers: {
      lastApplied: () => rep().store.lastApplied,
      newestPointId: () => rep().store.latest()?.id ?? '',
      applySegment: (_ctx, seg) => rep().store.apply(seg),
      initialCopyTarget: () =>
        new InitialCopyTarget({
          dir: join(opts.dir, 'replica'),
          disks: rep().disks,
          diskPaths: rep().paths,
          store: rep().store,
          ...(opts.flushEveryBytes ? { flushEveryBytes: opts.flushEveryBytes } : {}),
          log: silentLogger,
        }),
      resyncTarget: () =>
        new ResyncTarget({ store: rep().store, disks: rep().disks, log: silentLogger }),
    },
    log: silentLogger,
  });
  const port = await server.listen();
  const client = (who: Identity = SENDER): ReplicationClient & SyncClient => {
    const c = ca.issue(who);
    const made = createReplicationClient({
      target: `127.0.0.1:${port}`,
      expectedPeer: SERVER,
      tls: { caPem: ca.rootCertPem, certPem: c.chainPem, keyPem: c.keyPem },
      log: silentLogger,
    });
    clients.push(made);
    return made;
  };
  return {
    ca,
    server,
    port,
    client,
    async ship(j, afterSeq) {
      const stream = await client().openShipStream({ vmId: VM, epoch: 1 });
      let shipped = 0;
      for (const s of j.sealedSegments()) {
        if (s.seq > afterSeq) {
          const seg = readCoalescedSegment(s.path);
          await stream.ship({ vmId: VM, seq: s.seq, point: seg.point, extents: seg.extents });
          shipped++;
        }
        await j.markShipped(s.seq);
      }
      await stream.close();
      return shipped;
    },
    async close() {
      for (const c of clients) c.close();
      await server.shutdown();
    },
  };
}
