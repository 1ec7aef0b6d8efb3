/**
 * The provider's host endpoint (--listen): the ProviderHosts gRPC service
 * (proto/secondsite/v1/host_control.proto). Enrol is a unary call authenticated by the join
 * token; Connect is the control stream of an enrolled host, whose caller comes only from the
 * certificate TLS verified (agent/common/caller.ts) and must be a host of this vault that the
 * site file declares.
 *
 * Frames are dispatched by a table; anything unexpected gets an error frame and ends the
 * stream. States: created → serving (listen) → closed (shutdown).
 */
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { z } from 'zod';
import { SecondsiteError, badInput, isSecondsiteError } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import { loadPackageDefinition } from '../../../common/proto/load.ts';
import type { Clock } from '../../../common/time/clock.ts';
import { errorDetailOf } from '../../../common/wire/agent-channel-messages.ts';
import { toGrpcError } from '../../../common/wire/grpc-errors.ts';
import {
  HOST_CONTROL_PROTOCOL,
  type HostEnrolReply,
  type HostEnrolRequest,
  type HostFrame,
  type HostRenewReply,
  type HostRenewRequest,
  type ProviderFrame,
} from '../../../common/wire/host-control-messages.ts';
import { callerOf, type Caller } from '../../common/caller.ts';
import type { SiteFile } from '../site/site-schema.ts';
import type { HostRegistry, HostSession } from './host-registry.ts';
import {
  hostsServerCredentials,
  type HostsServerCertificates,
  type HostsServerTls,
} from './server-tls.ts';
import type { TicketRelay } from './ticket-relay.ts';

/** A CSR is ~1 KiB, an inventory of hundreds of VMs well under 1 MiB. */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

const enrolSchema = z.object({
  hostName: z.string().min(1).max(80),
  csrPem: z.string().min(1).max(16_384),
  tokenSecret: z.string().max(200),
  address: z.string().max(64),
});

export interface HostsServerOptions {
  readonly listen: { readonly host: string; readonly port: number };
  readonly tls: HostsServerTls | HostsServerCertificates;
  readonly vault: string;
  readonly site: () => SiteFile;
  readonly enrol: (req: HostEnrolRequest) => Promise<HostEnrolReply>;
  /** Signs an enrolled host's renewal CSR (renew.ts); absent: Renew is refused. */
  readonly renew?: (
    caller: Caller,
    peer: PeerCertificate | undefined,
    req: HostRenewRequest,
  ) => HostRenewReply;
  readonly registry: HostRegistry;
  /** Relays hosts' ticket service requests; absent: they are refused. */
  readonly tickets?: TicketRelay;
  readonly clock: Clock;
  readonly log: Logger;
}

export interface HostsServer {
  /** The bound port (the one asked for, or the one picked for port 0). */
  readonly port: number;
  shutdown(): Promise<void>;
}

function providerHostsService(): grpc.ServiceDefinition {
  const pkg = grpc.loadPackageDefinition(loadPackageDefinition()) as unknown as {
    secondsite: { v1: { ProviderHosts: grpc.ServiceClientConstructor } };
  };
  return pkg.secondsite.v1.ProviderHosts.service;
}

function toError(e: unknown): SecondsiteError {
  return isSecondsiteError(e) ? e : new SecondsiteError('SS_INTERNAL', 'internal error');
}

/** The caller of Connect and Renew: a host of our vault that the site file declares. */
function hostCaller(
  call: Parameters<typeof callerOf>[0],
  o: HostsServerOptions,
): { caller: Caller; host: string } {
  const caller = callerOf(call, o.clock);
  if (caller.vault !== o.vault) {
    throw new SecondsiteError('SS_UNAUTHENTICATED', `host ${caller.uri} belongs to another vault`);
  }
  const host = o.site().hosts.find((h) => h.name.toLowerCase() === caller.host)?.name;
  if (host === undefined) {
    throw new SecondsiteError(
      'SS_UNAUTHENTICATED',
      `host ${caller.host} is not declared in the site file`,
    );
  }
  return { caller, host };
}

/** The dispatch table of one control stream, by frame kind (steps 1, 3, 4). */
function frameTable(
  session: HostSession,
  o: HostsServerOptions,
): { greeted(): boolean; table: Record<string, (f: HostFrame) => void> } {
  let greeted = false;
  const table: Record<string, (f: HostFrame) => void> = {
    hello: (f) => {
      if (!('hello' in f) || greeted) throw new SecondsiteError('SS_PROTOCOL', 'a second hello');
      const h = f.hello;
      if (h.protocolMin > HOST_CONTROL_PROTOCOL.max || h.protocolMax < HOST_CONTROL_PROTOCOL.min) {
        throw new SecondsiteError('SS_PROTOCOL_INCOMPATIBLE', 'no common control protocol');
      }
      greeted = true;
      session.send({ welcome: { protocol: Math.min(h.protocolMax, HOST_CONTROL_PROTOCOL.max) } });
      o.registry.attach(session, h.inventory ?? { vms: [] }, {
        address: h.address ?? '',
        certPort: h.certPort ?? 0,
        ticketPort: h.ticketPort ?? 0,
      });
    },
    inventory: (f) =>
      'inventory' in f && o.registry.onInventory(session, f.inventory ?? { vms: [] }),
    commandResult: (f) => 'commandResult' in f && o.registry.onResult(session, f.commandResult),
    ticketService: (f) => {
      if (!('ticketService' in f)) return;
      if (!o.tickets) throw new SecondsiteError('SS_PROTOCOL', 'no ticket service here');
      o.tickets.fromHost(session, f.ticketService);
    },
  };
  return { greeted: () => greeted, table };
}

function connectHandler(
  o: HostsServerOptions,
): grpc.handleBidiStreamingCall<HostFrame, ProviderFrame> {
  return (call) => {
    let who: { caller: Caller; host: string };
    try {
      who = hostCaller(call, o);
    } catch (e) {
      o.log.warn({ err: e }, 'host connection refused');
      call.emit('error', toGrpcError(e));
      return;
    }
    let closed = false;
    const close = (): void => {
      if (!closed) call.end();
      closed = true;
    };
    const session: HostSession = {
      host: who.host,
      // Nothing is written once the stream ended (a late command of a replaced session).
      send: (frame) => void (closed || call.write(frame)),
      end: close,
    };
    const { greeted, table } = frameTable(session, o);
    call.on('data', (frame: HostFrame) => {
      if (closed) return;
      try {
        // TLS checked validity at the handshake only; the stream may outlive the certificate.
        if (o.clock.now() > who.caller.certNotAfter) {
          throw new SecondsiteError('SS_CERT_INVALID', 'the host certificate has expired');
        }
        const handler = frame.body === undefined ? undefined : table[frame.body];
        if (handler === undefined || (!greeted() && frame.body !== 'hello')) {
          throw new SecondsiteError('SS_PROTOCOL', `unexpected ${frame.body ?? 'empty'} frame`);
        }
        handler(frame);
      } catch (e) {
        o.log.warn({ err: e, host: session.host }, 'closing a host control stream');
        session.send({ error: errorDetailOf(toError(e)) });
        close();
        o.registry.detach(session);
      }
    });
    const gone = (): void => {
      closed = true;
      o.tickets?.drop(session);
      o.registry.detach(session);
    };
    call.on('end', () => {
      close();
      gone();
    });
    call.on('cancelled', gone);
    call.on('error', gone);
  };
}

function enrolHandler(
  o: HostsServerOptions,
): grpc.handleUnaryCall<HostEnrolRequest, HostEnrolReply> {
  return (call, callback) => {
    void (async () => {
      const parsed = enrolSchema.safeParse(call.request);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw badInput(issue?.path.join('.') || 'request', issue?.message ?? 'malformed');
      }
      return o.enrol(parsed.data);
    })().then(
      (reply) => {
        o.log.info({ host: call.request.hostName, identity: reply.identity }, 'host enrolled');
        callback(null, reply);
      },
      (e: unknown) => {
        const err = toError(e);
        if (err.code === 'SS_INTERNAL') o.log.error({ err: e }, 'enrolment failed');
        else o.log.warn({ code: err.code, msg: err.message }, 'enrolment refused');
        callback(toGrpcError(err));
      },
    );
  };
}

const renewSchema = z.object({ csrPem: z.string().min(1).max(16_384) });

function renewHandler(
  o: HostsServerOptions,
): grpc.handleUnaryCall<HostRenewRequest, HostRenewReply> {
  return (call, callback) => {
    let caller: Caller | undefined;
    try {
      caller = hostCaller(call, o).caller;
      if (!o.renew) throw new SecondsiteError('SS_CONFLICT', 'this provider does not renew');
      const parsed = renewSchema.safeParse(call.request);
      if (!parsed.success) throw badInput('csrPem', parsed.error.issues[0]?.message ?? 'bad');
      const reply = o.renew(caller, call.getAuthContext()?.sslPeerCertificate, parsed.data);
      o.log.info({ host: caller.uri }, 'host certificate renewed');
      callback(null, reply);
    } catch (e) {
      const err = toError(e);
      if (err.code === 'SS_INTERNAL') o.log.error({ err: e }, 'renewal failed');
      else o.log.warn({ host: caller?.uri, code: err.code, msg: err.message }, 'renewal refused');
      callback(toGrpcError(err));
    }
  };
}

export async function startHostsServer(o: HostsServerOptions): Promise<HostsServer> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.keepalive_permit_without_calls': 1,
  });
  server.addService(providerHostsService(), {
    Enrol: enrolHandler(o),
    Connect: connectHandler(o),
    Renew: renewHandler(o),
  });
  const { host, port } = o.listen;
  const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(target, hostsServerCredentials(o.tls), (e, p) => (e ? reject(e) : resolve(p))),
  ).catch((e: unknown) => {
    throw badInput('listen', `cannot listen on ${target} for hosts (${(e as Error).message})`);
  });
  o.log.info({ listen: `${host}:${bound}` }, 'host endpoint listening');
  return {
    port: bound,
    // Hosts reconnect with backoff, so open streams are cut rather than waited for.
    shutdown: async () => server.forceShutdown(),
  };
}
