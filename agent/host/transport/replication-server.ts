/**
 * The replication port (8084): the Replication service over gRPC with mutual TLS.
 *
 * Every call passes one adapter (STYLE.md rule 5) before its handler runs:
 *  1. TLS (at connect): the client presented a certificate chaining to the vault CA
 *     (`ServerCredentials.createSsl(ca, [...], true)` refuses the connection otherwise).
 *  2. Per call: the Caller is read from that certificate by agent/common/caller.ts, whose
 *     validity is checked again now (a connection can outlive its certificate).
 *  3. Per stream: the Hello is negotiated and `authorize(caller, vmId)` (the pairing) asked.
 *  4. Errors become a gRPC status + `ss-code` (common/wire/grpc-errors.ts) and are logged once.
 *
 * States: created → listening (listen/run) → closed (shutdown).
 */
import * as grpc from '@grpc/grpc-js';
import type { Service } from '../../../common/lifecycle/lifecycle.ts';
import type { Logger } from '../../../common/log/log.ts';
import { systemClock, type Clock } from '../../../common/time/clock.ts';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { toGrpcError } from '../../../common/wire/grpc-errors.ts';
import { callerOf, type AuthContextSource, type Caller } from '../../common/caller.ts';
import type { RevocationCheck } from '../../common/revocation.ts';
import { LOCAL_HELLO, type HelloFields } from '../replication/protocol.ts';
import type { StatusReplyMsg, StatusRequestMsg } from '../replication/wire-types.ts';
import { FLOW_CONTROL_WINDOW, SERVER_OPTIONS } from './grpc-options.ts';
import { replicationService } from './replication-service.ts';
import { RotatingTls, type TlsSource } from './rotating-tls.ts';
import { raiseServerWindows } from './server-window.ts';
import { serveInitialCopy, type CopyTargetFactory } from './initial-copy-server.ts';
import { serveResync, type ResyncTargetFactory } from './resync-server.ts';
import {
  acceptHello,
  serveShipStream,
  welcomeFor,
  type Authorize,
  type ReplicationHandlers as ShipHandlers,
} from './ship-server.ts';

export type { Authorize, StreamContext } from './ship-server.ts';
export type { CopyTarget, CopyTargetFactory } from './initial-copy-server.ts';
export type { ResyncTargetFactory } from './resync-server.ts';

/**
 * The replica side the server calls (wired to the recovery store by the host agent). The copy
 * and resync factories are optional: without them those streams end with SS_CONFLICT.
 */
export interface ReplicationHandlers extends ShipHandlers {
  /** InitialCopy: the VM's InitialCopyTarget (agent/host/sync), made per stream. */
  initialCopyTarget?: CopyTargetFactory;
  /** ResyncHashes: the VM's ResyncTarget (agent/host/sync), made per stream. */
  resyncTarget?: ResyncTargetFactory;
}

export type { TlsMaterial, TlsSource } from './rotating-tls.ts';

export interface ReplicationServerOptions {
  /** Address to listen on, e.g. the host agent's address. */
  readonly address: string;
  /** @default 8084 (0 picks a free port, for tests) */
  readonly port?: number;
  /** Fixed material, or a RotatingTls whose updates apply to new handshakes (no rebind). */
  readonly tls: TlsSource;
  readonly authorize: Authorize;
  readonly handlers: ReplicationHandlers;
  readonly log: Logger;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Revoked credentials of the vault: refused on every call and per segment. */
  readonly revoked?: RevocationCheck;
  /** Tests only: the versions and features this server claims. @default LOCAL_HELLO */
  readonly local?: HelloFields;
  /** Raise the server's HTTP/2 receive windows (server-window.ts). @default true */
  readonly raiseWindows?: boolean;
}

export interface ReplicationServer extends Service {
  /** Binds and starts serving; resolves with the bound port. Idempotent. */
  listen(): Promise<number>;
  /** The underlying grpc-js server (tests and benchmarks). */
  readonly grpcServer: grpc.Server;
}

type Adapter = (caller: Caller, call: AuthContextSource) => Promise<void>;

export function createReplicationServer(opts: ReplicationServerOptions): ReplicationServer {
  const log = opts.log.child({ component: 'replication-server' });
  const clock = opts.clock ?? systemClock;
  const local = opts.local ?? LOCAL_HELLO;
  const server = new grpc.Server(SERVER_OPTIONS);
  const revoked = opts.revoked;
  const deps = { local, authorize: opts.authorize, handlers: opts.handlers, log, clock, revoked };

  /** Steps 2 and 4 of the header: the caller first, errors mapped and logged once. */
  function guarded(method: string, body: Adapter, fail: (e: unknown) => void) {
    return (call: AuthContextSource): void => {
      let caller: Caller;
      try {
        caller = callerOf(call, clock, revoked);
      } catch (e) {
        log.warn({ method, err: (e as Error).message }, 'replication call refused');
        fail(e);
        return;
      }
      body(caller, call).catch((e: unknown) => {
        log.warn(
          { method, peer: caller.uri, err: (e as Error).message },
          'replication call failed',
        );
        fail(e);
      });
    };
  }

  const shipSegments: grpc.handleBidiStreamingCall<never, never> = (call) =>
    guarded(
      'ShipSegments',
      async (caller) => {
        await serveShipStream(call as never, { ...deps, caller });
        call.end();
      },
      (e) => call.emit('error', toGrpcError(e)),
    )(call);

  const status: grpc.handleUnaryCall<StatusRequestMsg, StatusReplyMsg> = (call, callback) =>
    guarded(
      'Status',
      async (caller) => {
        const { agreement, vmId } = await acceptHello(call.request.hello, { ...deps, caller });
        callback(null, {
          welcome: welcomeFor(local, agreement),
          lastAppliedSeq: await opts.handlers.lastApplied(vmId),
          newestPointId: (await opts.handlers.newestPointId?.(vmId)) ?? '',
        });
      },
      (e) => callback(toGrpcError(e)),
    )(call);

  // One copy or resync stream per VM at a time (both rewrite the replica disks).
  const busy = new Set<string>();
  const refuse = (what: string) => (): never => {
    throw new SecondsiteError('SS_CONFLICT', `this host does not serve ${what}`);
  };
  const initialCopyTarget = opts.handlers.initialCopyTarget ?? refuse('initial copies');
  const resyncTarget = opts.handlers.resyncTarget ?? refuse('resyncs');

  const initialCopy: grpc.handleBidiStreamingCall<never, never> = (call) =>
    guarded(
      'InitialCopy',
      async (caller) => {
        await serveInitialCopy(call as never, { ...deps, caller, busy }, initialCopyTarget);
        call.end();
      },
      (e) => call.emit('error', toGrpcError(e)),
    )(call);

  const resyncHashes: grpc.handleBidiStreamingCall<never, never> = (call) =>
    guarded(
      'ResyncHashes',
      async (caller) => {
        await serveResync(call as never, { ...deps, caller, busy }, resyncTarget);
        call.end();
      },
      (e) => call.emit('error', toGrpcError(e)),
    )(call);

  server.addService(replicationService().service, {
    shipSegments,
    status,
    initialCopy,
    resyncHashes,
  } as never);

  let port: number | undefined;
  let stopped: () => void = () => undefined;

  async function listen(): Promise<number> {
    if (port !== undefined) return port;
    const tls = opts.tls;
    const creds =
      tls instanceof RotatingTls
        ? tls.serverCredentials()
        : grpc.ServerCredentials.createSsl(
            Buffer.from(tls.caPem),
            [{ private_key: Buffer.from(tls.keyPem), cert_chain: Buffer.from(tls.certPem) }],
            true,
          );
    const target = `${opts.address.includes(':') ? `[${opts.address}]` : opts.address}:${opts.port ?? 8084}`;
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(target, creds, (e, p) => (e ? reject(e) : resolve(p))),
    );
    if ((opts.raiseWindows ?? true) && raiseServerWindows(server, FLOW_CONTROL_WINDOW) === 0) {
      log.warn(
        'could not raise HTTP/2 windows (grpc-js internals changed); shipping will be slower',
      );
    }
    log.info({ address: opts.address, port }, 'replication listening');
    return port;
  }

  return {
    grpcServer: server,
    listen,
    async run(signal: AbortSignal): Promise<void> {
      await listen();
      await new Promise<void>((resolve) => {
        stopped = resolve;
        if (signal.aborted) resolve();
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    },
    async shutdown(): Promise<void> {
      await new Promise<void>((resolve) => {
        // Streams mid-segment are cut: the sender resends the segment (nothing was applied).
        const timer = setTimeout(() => server.forceShutdown(), 5_000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      stopped();
    },
  };
}
