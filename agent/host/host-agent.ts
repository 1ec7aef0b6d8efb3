/**
 * The parts of a host agent wired together, without the process around them (signals, the
 * data-folder lock): main.ts runs one per process, integration tests run several in one
 * process. Parts: the VM manager, the local control API, replication (receiver behind the
 * replication port, senders for primary VMs), and the replication operations that the local
 * API and the provider's relayed commands share (replication/replication-ops.ts).
 */
import { join } from 'node:path';
import type { Logger } from '../../common/log/log.ts';
import { RevocationList } from '../common/revocation.ts';
import type { Clock } from '../../common/time/clock.ts';
import type { HostConfig } from './config.ts';
import { ReplayCache } from '../../common/tickets/replay-cache.ts';
import { ReplayFileStore } from '../../common/tickets/replay-file.ts';
import { createControlServer } from './control/control-server.ts';
import { enrolledIdentity, ensureHostKeys } from './enrolment/host-keys.ts';
import { createHostTickets, type HostTickets } from './enrolment/host-tickets.ts';
import { ticketChannelCredentials } from './transport/ticket-credentials.ts';
import { peerUri } from './replication/pairing.ts';
import { createFailoverOps, type FailoverOps } from './failover/failover-ops.ts';
import { pinsOf } from './failover/failover-state.ts';
import { createHostReplication, type HostReplication } from './replication/replication-host.ts';
import { createReplicationOps, type ReplicationOps } from './replication/replication-ops.ts';
import { layout } from './vm/layout.ts';
import { openChurnStats } from './vm/churn-file.ts';
import { HostBandwidth } from './replication/bandwidth-limiter.ts';
import { createVmManager, type VmManager } from './vm/vm-manager.ts';
import { Feature, localHello } from './replication/protocol.ts';

/** Where peers reach this host's replication ports (told to the provider in the hello). */
export interface HostEndpoint {
  readonly address: string;
  readonly certPort: number;
  readonly ticketPort: number;
}

export interface HostAgent {
  readonly vms: VmManager;
  readonly replication: HostReplication;
  /** Pair, unpair, pause, resync, points: shared by the local API and provider commands. */
  readonly ops: ReplicationOps;
  /** The ticket service client (enrolled hosts only): give it to the provider link. */
  readonly tickets?: HostTickets;
  /** Resolves once the replication port is bound (its real port when 0 was asked). */
  endpoint(): Promise<HostEndpoint>;
  /** Runs every part until the signal aborts; a failing part aborts the others. */
  run(signal: AbortSignal): Promise<void>;
  shutdown(): Promise<void>;
}

/** The revoked-host list in the host's data folder (agent/common/revocation.ts). */
export const REVOKED_FILE = 'revoked.json';

export function createHostAgent(config: HostConfig, clock: Clock, log: Logger): HostAgent {
  // R22: guest write churn (kept in <data>/churn.json) and the replication bandwidth cap.
  const churn = openChurnStats({
    dataDir: config.dataDir,
    clock,
    log,
    bucketMs: config.churnBucketMs,
  });
  const bandwidth = new HostBandwidth({ dataDir: config.dataDir, clock, log });
  // Issue #7: the vault's revoked host credentials as the coordinator last pushed them
  // (set_revoked), kept 0600 in <data>/revoked.json so a restart keeps refusing.
  const revoked = new RevocationList(join(config.dataDir, REVOKED_FILE));
  const vms = createVmManager({
    churn: churn.stats,
    dataDir: config.dataDir,
    clock,
    log,
    freezeTimeoutMs: config.freezeTimeoutMs,
    copyFrequencyOverrideMs: config.devCopyFrequencyMs,
    journalCapBytes: config.journalCapBytes,
    // Called only for cuts, which come after construction (replication is set by then).
    onSealed: (vm) => replication.wake(vm),
    // Asked only when a VM starts, after construction (failover is set by then).
    startHook: (vm) => failover.startHook(vm),
  });
  // Enrolled hosts make their long-term ticket key (and replay file) once, serve the ticket
  // port and get tickets through the provider (docs/security.md).
  const self = config.provider === undefined ? undefined : enrolledIdentity(config.dataDir);
  const keys = self === undefined ? undefined : ensureHostKeys(config.dataDir, clock.now());
  const tickets = self && keys ? createHostTickets({ self, keys, clock, log }) : undefined;
  const replication: HostReplication = createHostReplication({
    dataDir: config.dataDir,
    vms,
    tlsDir: config.tlsDir,
    address: config.address,
    port: config.certPort,
    clock,
    log,
    pins: (vm) => pinsOf(layout.vmDir(config.dataDir, vm)),
    bandwidth,
    revoked,
    local: localHello(config.liveSegments ? 0 : Feature.liveSegments),
    ...(self && keys && tickets
      ? {
          tickets: {
            port: config.ticketPort,
            self,
            keyFor: (v: number) => keys.keyFor(v),
            replay: new ReplayCache(new ReplayFileStore(keys.replayPath), clock.now()),
            credentials: (vm, p) => {
              const peer = peerUri(p);
              return ticketChannelCredentials({
                expectedPeer: peer,
                clock,
                credentials: () =>
                  tickets.credentials({ peerHost: p.peerHost, peerUri: peer, vm, epoch: p.epoch }),
              });
            },
          },
        }
      : {}),
  });
  const pairing = createReplicationOps({ dataDir: config.dataDir, vms, replication, log });
  const failover: FailoverOps = createFailoverOps({
    dataDir: config.dataDir,
    vms,
    replication,
    pairing,
    clock,
    log,
  });
  // Failover rides on the operations both callers share (host-commands.ts reads ops.failover).
  const ops: ReplicationOps = { ...pairing, failover, bandwidth, churn, revoked };
  const control = createControlServer({ dataDir: config.dataDir, vms, ops, log, replication });
  const parts = [vms, control, replication, failover, churn];
  return {
    vms,
    replication,
    ops,
    ...(tickets ? { tickets } : {}),
    async endpoint() {
      const bound = await replication.listening();
      const ticketBound = await replication.ticketListening();
      return {
        address: config.address ?? '',
        certPort: bound ?? 0,
        ticketPort: ticketBound ?? 0,
      };
    },
    async run(signal) {
      const inner = new AbortController();
      signal.addEventListener('abort', () => inner.abort(), { once: true });
      const running = parts.map((p) =>
        p.run(inner.signal).catch((e: unknown) => {
          log.error({ err: e }, 'host agent part failed; stopping');
          inner.abort();
          throw e;
        }),
      );
      const outcome = await Promise.allSettled(running);
      const failed = outcome.find((o) => o.status === 'rejected');
      if (failed) throw failed.reason;
    },
    async shutdown() {
      await control.shutdown();
      await failover.shutdown(); // test copies' exports, before their stores close
      await replication.shutdown();
      await vms.shutdown();
      bandwidth.close();
      churn.save();
    },
  };
}
