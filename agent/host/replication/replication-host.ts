/**
 * Replication inside the host agent: the receiver (replica role, behind the replication port)
 * and the sender pool (primary role), wired to the VM manager's pairings and journals. The
 * host agent's main builds one; the control API asks it for status, points and reads.
 *
 * The replication port listens only when this host has TLS material (ca.pem, cert.pem,
 * key.pem in its TLS folder) and an address; senders need the TLS material too.
 *
 * States: created → running (run) → closed (shutdown).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { RevocationCheck } from '../../common/revocation.ts';
import type { ReplayCache } from '../../../common/tickets/replay-cache.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { Clock } from '../../../common/time/clock.ts';
import type { RecoveryPointRecord } from '../journal/types.ts';
import type { ReplicaStore } from '../recovery/types.ts';
import type { ReplicationServer } from '../transport/replication-server.ts';
import { RotatingTls, type TlsMaterial } from '../transport/rotating-tls.ts';
import { createTicketServer, type TicketServer } from '../transport/ticket-server.ts';
import { layout } from '../vm/layout.ts';
import type { VmManager, VmView } from '../vm/vm-manager.ts';
import { peerUri, type Pairing } from './pairing.ts';
import { Receiver } from './receiver.ts';
import { SenderPool } from './sender-pool.ts';
import type { HostBandwidth } from './bandwidth-limiter.ts';
import type { ReplicationStatus } from './sender.ts';
import type { HelloFields } from './protocol.ts';

export interface HostReplicationOptions {
  readonly dataDir: string;
  readonly vms: VmManager;
  /** Folder with ca.pem, cert.pem, key.pem. */
  readonly tlsDir: string;
  /** Address the replication port listens on; none: this host only sends. */
  readonly address?: string;
  /** @default 8084; 0 picks a free port (tests) */
  readonly port: number;
  readonly clock: Clock;
  readonly log: Logger;
  /** Points pinned when a replica store opens (agent/host/failover: views kept over a restart). */
  readonly pins?: (vm: string) => Readonly<Record<string, string>>;
  /**
   * The vault's revoked host credentials (set_revoked, agent/common/revocation.ts): callers it
   * names are refused on both ports (8084 and 8083 share one server) on their next call.
   */
  readonly revoked?: RevocationCheck;
  /** The host's replication bandwidth cap (bandwidth-limiter.ts); absent: unlimited. */
  readonly bandwidth?: HostBandwidth;
  /** The Hello this host sends and answers with (protocol.ts localHello). @default LOCAL_HELLO */
  readonly local?: HelloFields;
  /**
   * Ticket authentication (enrolled hosts): the ticket port (8083) served from the same
   * replication server, and the senders' credentials for pairings with `ticketAuth`.
   */
  readonly tickets?: {
    /** @default 8083; 0 picks a free port (tests) */
    readonly port: number;
    /** This host's identity URI. */
    readonly self: string;
    readonly keyFor: (version: number) => Buffer | undefined;
    readonly replay: ReplayCache;
    readonly credentials: (vm: string, pairing: Pairing) => ChannelCredentials;
  };
}

export interface HostReplication {
  run(signal: AbortSignal): Promise<void>;
  shutdown(): Promise<void>;
  /**
   * The TLS material of the replication port and senders (undefined: none); certificate
   * renewal updates it and new connections take the new certificate without a restart.
   */
  readonly tls: RotatingTls | undefined;
  /** Resolves with the bound replication port once listening (undefined: not listening). */
  listening(): Promise<number | undefined>;
  /** Resolves with the bound ticket port once listening (undefined: not served). */
  ticketListening(): Promise<number | undefined>;
  status(view: VmView): Promise<ReplicationStatus | undefined>;
  /** Pairings changed; resolves once the senders match them (a paused VM's has stopped). */
  refresh(): Promise<void>;
  /** A replica VM is being unpaired: its store closes and stays closed until `release`. */
  retire(vm: string): Promise<void>;
  release(vm: string): void;
  /** A segment was sealed for `vm`. */
  wake(vm: string): void;
  points(vm: string): Promise<RecoveryPointRecord[]>;
  /** A replica VM's open recovery store (failover views read and pin it). */
  store(vm: string): Promise<ReplicaStore>;
  readToFile(vm: string, disk: number, pointId: string, outPath: string): Promise<number>;
}

/** Reads the host's TLS material; undefined when the folder has none of the three files. */
export function loadTls(dir: string): TlsMaterial | undefined {
  const files = ['ca.pem', 'cert.pem', 'key.pem'].map((f) => join(dir, f));
  const present = files.filter((f) => existsSync(f));
  if (present.length === 0) return undefined;
  if (present.length < files.length) {
    throw new SecondsiteError(
      'SS_CERT_INVALID',
      `${dir} must hold ca.pem, cert.pem and key.pem; found only ${present.join(', ')}`,
      { dir },
    );
  }
  const [caPem, certPem, keyPem] = files.map((f) => readFileSync(f, 'utf8')) as [
    string,
    string,
    string,
  ];
  return { caPem, certPem, keyPem };
}

export function createHostReplication(o: HostReplicationOptions): HostReplication {
  const log = o.log.child({ component: 'replication' });
  const loaded = loadTls(o.tlsDir);
  const tls = loaded && new RotatingTls(loaded);
  const receiver = new Receiver({
    clock: o.clock,
    log,
    ...(o.pins ? { pins: o.pins } : {}),
    vms: {
      find: (name) => {
        const found = o.vms.paired().find((v) => v.config.name === name);
        if (!found) return undefined;
        return { ...found, vmDir: layout.vmDir(o.dataDir, name) };
      },
    },
  });
  const pool = new SenderPool({
    ...(o.local ? { local: o.local } : {}),
    primaries: () =>
      o.vms
        .paired()
        .filter((p) => p.pairing.role === 'primary')
        .map((p) => ({
          name: p.config.name,
          pairing: p.pairing,
          journal: () => o.vms.journalOf(p.config.name),
          copy: {
            diskSizes: p.config.disks.map((d) => d.sizeBytes),
            stateDir: layout.vmDir(o.dataDir, p.config.name),
            setBaseline: (baseline: Pairing['baseline']) =>
              o.vms.setBaseline(p.config.name, baseline),
          },
        })),
    tls,
    tlsDir: o.tlsDir,
    ...(o.tickets ? { ticketCredentials: o.tickets.credentials } : {}),
    ...(o.bandwidth ? { bandwidth: o.bandwidth } : {}),
    clock: o.clock,
    log,
  });
  let server: ReplicationServer | undefined;
  if (tls && o.address) {
    server = receiver.server({
      address: o.address,
      port: o.port,
      tls,
      ...(o.revoked ? { revoked: o.revoked } : {}),
      ...(o.local ? { local: o.local } : {}),
    });
  } else log.info({ tlsDir: o.tlsDir, address: o.address }, 'replication port not served');
  // 8083: the same grpc-js server behind the AP exchange (ticket-server.ts).
  const ticketServer: TicketServer | undefined =
    server && o.tickets && o.address
      ? createTicketServer({
          address: o.address,
          port: o.tickets.port,
          grpcServer: server.grpcServer,
          self: o.tickets.self,
          keyFor: o.tickets.keyFor,
          replay: o.tickets.replay,
          log,
          clock: o.clock,
        })
      : undefined;
  let bound: (port: number | undefined) => void = () => undefined;
  const listening = new Promise<number | undefined>((r) => (bound = r));
  let ticketBound: (port: number | undefined) => void = () => undefined;
  const ticketListening = new Promise<number | undefined>((r) => (ticketBound = r));

  return {
    tls,
    async run(signal) {
      if (server) bound(await server.listen());
      else bound(undefined);
      if (ticketServer) ticketBound(await ticketServer.listen());
      else ticketBound(undefined);
      await Promise.all([server?.run(signal), ticketServer?.run(signal), pool.run(signal)]);
    },
    async shutdown() {
      await pool.shutdown();
      await ticketServer?.shutdown();
      await server?.shutdown();
      await receiver.shutdown();
    },
    listening: () => listening,
    ticketListening: () => ticketListening,
    async status(view) {
      const p = view.pairing;
      if (!p) return undefined;
      if (p.role === 'primary') return pool.status(view.config.name, p);
      const s = await receiver.status(view.config.name).catch(() => undefined);
      return {
        role: 'replica',
        peer: peerUri(p),
        state: 'idle',
        lastAckedSeq: s?.lastApplied ?? 0,
        lastError: '',
        lastShippedAt: s?.lastApplyAt ?? 0,
        ...(s ? { segmentsVia: s.segmentsVia } : {}),
        ...(s ? { received: s.received } : {}),
      };
    },
    refresh: () => pool.refresh(),
    retire: (vm) => receiver.retire(vm),
    release: (vm) => receiver.release(vm),
    wake: (vm) => pool.wake(vm),
    points: (vm) => receiver.points(vm),
    store: (vm) => receiver.store(vm),
    readToFile: (vm, disk, pointId, outPath) => receiver.readToFile(vm, disk, pointId, outPath),
  };
}
