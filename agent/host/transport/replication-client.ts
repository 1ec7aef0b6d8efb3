/**
 * Client of a peer host's replication port (8084): mutual TLS with this host's certificate,
 * the peer verified by its identity URI SAN (not by the address dialled, which only locates
 * it), keepalive and the flow-control window of grpc-options.ts.
 *
 * The channel connects lazily and reconnects by itself; each stream or call opens with Hello.
 * States: idle → (streams open and close over it) → closed (close()).
 */
import * as grpc from '@grpc/grpc-js';
import { checkServerIdentityFor } from '../../../certs/peer.ts';
import { formatIdentity, type Identity } from '../../../certs/identity.ts';
import type { Logger } from '../../../common/log/log.ts';
import { fromGrpcError } from '../../../common/wire/grpc-errors.ts';
import { safeInt } from '../replication/chunk-codec.ts';
import {
  LOCAL_HELLO,
  negotiate,
  type Agreement,
  type HelloFields,
} from '../replication/protocol.ts';
import type { StatusReplyMsg } from '../replication/wire-types.ts';
import { CLIENT_OPTIONS } from './grpc-options.ts';
import { RotatingTls, type TlsSource } from './rotating-tls.ts';
import { replicationService } from './replication-service.ts';
import {
  runInitialCopy,
  type InitialCopyOptions,
  type InitialCopyResult,
} from './initial-copy-client.ts';
import {
  NetworkResyncPeer,
  type RemoteResyncOptions,
  type RemoteResyncPeer,
} from './resync-client.ts';
import { ShipStream } from './ship-client.ts';

export { ShipStream, type ShipResult } from './ship-client.ts';
export type { InitialCopyOptions, InitialCopyResult } from './initial-copy-client.ts';
export type { RemoteResyncOptions, RemoteResyncPeer, ResyncWireStats } from './resync-client.ts';

export interface ReplicationClientOptions {
  /** host:port of the peer's replication port, e.g. "10.0.0.2:8084". */
  readonly target: string;
  /** The identity the peer's certificate must carry (from the pairing). */
  readonly expectedPeer: Identity;
  /** Fixed material, or a RotatingTls: each new connection uses its latest material. */
  readonly tls: TlsSource;
  /**
   * Channel credentials instead of mutual TLS with `tls`: the ticket port's
   * (ticket-credentials.ts `ticketChannelCredentials`). @default mutual TLS
   */
  readonly credentials?: grpc.ChannelCredentials;
  readonly log: Logger;
  /** Tests only: the versions and features this client claims. @default LOCAL_HELLO */
  readonly local?: HelloFields;
  /** Waits for the host's bandwidth cap before each chunk of every stream. @default none */
  readonly pace?: (bytes: number) => Promise<void>;
}

export interface PeerStatus {
  readonly agreement: Agreement;
  readonly lastApplied: number;
  readonly newestPointId: string;
}

export interface ReplicationClient {
  /** Opens a ShipSegments stream for one VM and completes its handshake. */
  openShipStream(opts: { vmId: string; epoch: number }): Promise<ShipStream>;
  /** The peer's last applied seq (and newest point) of a VM. */
  status(opts: { vmId: string; epoch: number; deadlineMs?: number }): Promise<PeerStatus>;
  close(): void;
}

/** The initial-copy and resync streams (a separate interface: ship-only fakes stay valid). */
export interface SyncClient {
  /**
   * Copies a VM's disks to the peer's replica over one InitialCopy stream (one attempt; it
   * resumes at the replica's watermark when the copy id and base match an earlier one).
   */
  initialCopy(opts: InitialCopyOptions): Promise<InitialCopyResult>;
  /** A ResyncPeer over a ResyncHashes stream, for `runResyncSource({ peer })`. */
  resyncPeer(opts: RemoteResyncOptions): RemoteResyncPeer;
}

/** The replica of `opts.vmId` on the peer as a ResyncPeer (see resync-client.ts). */
export function remoteResyncPeer(client: SyncClient, opts: RemoteResyncOptions): RemoteResyncPeer {
  return client.resyncPeer(opts);
}

/** SNI name sent to peers: the server is checked by identity, so this only has to be valid. */
const SNI_NAME = 'secondsite-peer';

export function createReplicationClient(
  opts: ReplicationClientOptions,
): ReplicationClient & SyncClient {
  const peerUri = formatIdentity(opts.expectedPeer);
  const log = opts.log.child({ component: 'replication-client', peer: peerUri });
  const local = opts.local ?? LOCAL_HELLO;
  const creds =
    opts.credentials ??
    (opts.tls instanceof RotatingTls
      ? opts.tls.channelCredentials(checkServerIdentityFor(opts.expectedPeer))
      : grpc.credentials.createSsl(
          Buffer.from(opts.tls.caPem),
          Buffer.from(opts.tls.keyPem),
          Buffer.from(opts.tls.certPem),
          { checkServerIdentity: checkServerIdentityFor(opts.expectedPeer) },
        ));
  const Ctor = replicationService();
  const client = new Ctor(
    opts.target,
    creds,
    opts.credentials
      ? CLIENT_OPTIONS
      : { ...CLIENT_OPTIONS, 'grpc.ssl_target_name_override': SNI_NAME },
  ) as grpc.Client & Record<string, (...args: unknown[]) => unknown>;

  return {
    async openShipStream({ vmId, epoch }): Promise<ShipStream> {
      const call = client['shipSegments']!() as ConstructorParameters<typeof ShipStream>[0];
      const stream = new ShipStream(call, local, peerUri);
      stream.pace = opts.pace;
      await stream.open({ vmId, epoch });
      log.debug({ vm: vmId, lastApplied: stream.lastApplied }, 'ship stream open');
      return stream;
    },

    status({ vmId, epoch, deadlineMs = 30_000 }): Promise<PeerStatus> {
      return new Promise<PeerStatus>((resolve, reject) => {
        client['status']!(
          { hello: { ...local, vmId, epoch } },
          { deadline: Date.now() + deadlineMs },
          (e: grpc.ServiceError | null, reply: StatusReplyMsg) => {
            if (e) return reject(fromGrpcError(e, peerUri));
            try {
              if (!reply.welcome) throw new Error('status reply without welcome');
              resolve({
                agreement: negotiate(local, reply.welcome),
                lastApplied: safeInt(reply.lastAppliedSeq, 'last_applied_seq'),
                newestPointId: reply.newestPointId,
              });
            } catch (err) {
              reject(err);
            }
          },
        );
      });
    },

    initialCopy(o: InitialCopyOptions): Promise<InitialCopyResult> {
      const call = client['initialCopy']!() as Parameters<typeof runInitialCopy>[0];
      log.debug({ vm: o.vmId, copyId: o.copyId }, 'initial copy stream');
      return runInitialCopy(call, local, peerUri, opts.pace ? { ...o, pace: opts.pace } : o);
    },

    resyncPeer(o: RemoteResyncOptions): RemoteResyncPeer {
      const open = () =>
        client['resyncHashes']!() as ConstructorParameters<
          typeof NetworkResyncPeer
        >[0] extends () => infer C
          ? C
          : never;
      return new NetworkResyncPeer(open, local, peerUri, opts.pace ? { ...o, pace: opts.pace } : o);
    },

    close(): void {
      client.close();
    },
  };
}
