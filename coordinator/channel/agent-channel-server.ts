/**
 * The coordinator's end of the agent channel (agent_channel.proto): a `ws` server on the HTTPS
 * server's upgrade event at /api/v1/agent. The admin REST API never sees these connections.
 *
 * Who is calling is decided per connection from TLS: a connection with a client certificate
 * that chains to our CA is the provider it names (and must be registered in its vault);
 * a connection without one may only register. Frames are dispatched by a table per kind;
 * an unexpected or unreadable frame gets an error frame and the connection is closed.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  assertPeerCertificateCurrent,
  fingerprintOfPeerCertificate,
  identityFromPeerCertificate,
} from '../../certs/peer.ts';
import { SecondsiteError, isSecondsiteError } from '../../common/errors/errors.ts';
import type { Logger } from '../../common/log/log.ts';
import type { Clock } from '../../common/time/clock.ts';
import {
  AGENT_CHANNEL_PATH,
  AGENT_MAX_FRAME,
  AGENT_PROTOCOL,
  agentChannelCodec,
  decodeEnvelope,
  errorDetailOf,
  type AgentEnvelope,
} from '../../common/wire/agent-channel-messages.ts';
import type { InventoryService } from '../inventory/inventory-service.ts';
import type { VmInventory } from '../inventory/vm-inventory.ts';
import type { ServerRecord, SiteInventory } from '../domain/server.ts';
import { inventorySchema } from '../registration/registration-job.ts';
import type { Vault } from '../domain/vault.ts';
import type { ProviderSigner } from '../registration/provider-signer.ts';
import type { RegistrationService } from '../registration/registration-service.ts';
import type { VaultService } from '../vaults/vault-service.ts';
import type { TicketService } from '../tickets/ticket-service.ts';
import type { ChannelHub, ChannelSession } from './channel-hub.ts';

export interface AgentChannelDeps {
  readonly hub: ChannelHub;
  readonly registration: RegistrationService;
  readonly vaults: VaultService;
  readonly inventory: InventoryService;
  /** Where hosts' VMs relayed by the provider are kept; absent in tests that need none. */
  readonly vms?: VmInventory;
  readonly clock: Clock;
  readonly log: Logger;
  /** The vault's ticket service (host_ticket_request); absent: such requests are refused. */
  readonly tickets?: TicketService;
  /** Signs a successor of a provider's CA (step 8); absent: such requests are refused. */
  readonly providerCa?: ProviderSigner['signSuccessorCa'];
  /** Sees every frame received, before it is decoded (the privacy test's trace). */
  readonly trace?: (frame: Buffer) => void;
}

function toError(e: unknown): SecondsiteError {
  return isSecondsiteError(e) ? e : new SecondsiteError('SS_INTERNAL', 'internal error');
}

function sendTo(ws: WebSocket, env: AgentEnvelope): void {
  if (ws.readyState === ws.OPEN) ws.send(agentChannelCodec().encode(env));
}

function refuse(ws: WebSocket, e: SecondsiteError): void {
  sendTo(ws, { error: errorDetailOf(e) });
  ws.close(4001, e.code);
}

/** A registration connection: one `register` frame, one answer, then close. */
/** How long an unauthenticated connection may take to send its register frame. */
const REGISTER_WAIT_MS = 30_000;

function registrationSession(ws: WebSocket, deps: AgentChannelDeps): void {
  const aborted = new AbortController();
  const idle = setTimeout(() => ws.close(4002, 'no registration'), REGISTER_WAIT_MS);
  ws.on('close', () => {
    clearTimeout(idle);
    aborted.abort(new SecondsiteError('SS_CANCELLED', 'connection closed'));
  });
  ws.once('message', (data: Buffer) => {
    clearTimeout(idle);
    void (async () => {
      try {
        const env = decodeEnvelope(data);
        if (env.body !== 'register' || !('register' in env)) {
          throw new SecondsiteError('SS_UNAUTHENTICATED', 'register first (no client certificate)');
        }
        const reply = await deps.registration.register(env.register, aborted.signal);
        sendTo(ws, { registered: reply });
        ws.close(1000, 'registered');
      } catch (e) {
        const err = toError(e);
        if (err.code === 'SS_INTERNAL') deps.log.error({ err: e }, 'registration failed');
        else deps.log.warn({ code: err.code, msg: err.message }, 'registration refused');
        refuse(ws, err);
      }
    })();
  });
}

interface Caller {
  readonly peer: PeerCertificate;
  readonly identityName: string;
  readonly vault: Vault;
  readonly server: ServerRecord;
}

/** Who is on the other end: a provider registered in its vault, with its current certificate. */
async function authenticate(socket: TLSSocket, deps: AgentChannelDeps): Promise<Caller> {
  const peer = socket.getPeerCertificate();
  assertPeerCertificateCurrent(peer, deps.clock.now());
  const identity = identityFromPeerCertificate(peer);
  if (identity.kind !== 'provider') {
    throw new SecondsiteError('SS_UNAUTHENTICATED', 'only providers use the agent channel');
  }
  const vault = await deps.vaults.byName(identity.vault).catch(() => undefined);
  const server =
    vault === undefined ? undefined : await deps.inventory.getServer(vault.id, identity.name);
  if (vault === undefined || server === undefined) {
    throw new SecondsiteError('SS_UNAUTHENTICATED', 'this provider is not registered in its vault');
  }
  if (fingerprintOfPeerCertificate(peer) !== server.clientCertFingerprint) {
    throw new SecondsiteError(
      'SS_CERT_INVALID',
      'this certificate was replaced by a later registration of the server; register again',
    );
  }
  return { peer, identityName: identity.name, vault, server };
}

type FrameHandler = (env: AgentEnvelope) => Promise<void>;

/** An inventory from the wire, checked before it is stored (unknown or missing fields refused). */
function validInventory(inventory: unknown): SiteInventory {
  const parsed = inventorySchema.safeParse(inventory ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SecondsiteError(
      'SS_PROTOCOL',
      `inventory: ${issue?.path.join('.')} ${issue?.message}`,
    );
  }
  return parsed.data;
}

/** The dispatch table of an authenticated channel, by frame kind. */
function providerHandlers(
  ws: WebSocket,
  caller: Caller,
  session: ChannelSession,
  deps: AgentChannelDeps,
  onGreeted: () => void,
): Record<string, FrameHandler> {
  const { vault, server } = caller;
  return {
    hello: async (env) => {
      if (!('hello' in env)) return;
      const h = env.hello;
      if (h.protocolMin > AGENT_PROTOCOL.max || h.protocolMax < AGENT_PROTOCOL.min) {
        throw new SecondsiteError('SS_PROTOCOL_INCOMPATIBLE', 'no common channel protocol');
      }
      await deps.inventory.reportInventory(
        vault.id,
        server.name,
        h.version,
        validInventory(h.inventory),
      );
      const protocol = Math.min(h.protocolMax, AGENT_PROTOCOL.max);
      sendTo(ws, { welcome: { protocol, heartbeatMs: deps.hub.heartbeatMs } });
      onGreeted();
      deps.hub.attach(session);
    },
    heartbeat: async () => deps.hub.heartbeat(session),
    commandResult: async (env) => {
      if ('commandResult' in env) {
        deps.hub.onResult(session, env.commandId ?? '', env.commandResult);
      }
    },
    hostInventory: async (env) => {
      if (!('hostInventory' in env)) return;
      const r = env.hostInventory;
      if (!r.host) throw new SecondsiteError('SS_PROTOCOL', 'host_inventory without a host');
      await deps.vms?.report(vault.id, server.name, r);
    },
    hostTicketRequest: async (env) => {
      if (!('hostTicketRequest' in env)) return;
      const requestId = env.hostTicketRequest?.request?.requestId ?? '';
      const reply = deps.tickets
        ? await deps.tickets.handle(
            { vaultId: vault.id, vaultName: vault.name, server: server.name },
            env.hostTicketRequest,
          )
        : {
            requestId,
            error: errorDetailOf(
              new SecondsiteError('SS_UNAVAILABLE', 'this coordinator runs no ticket service'),
            ),
          };
      sendTo(ws, { hostTicketReply: reply });
    },
    // Step 8: only for the provider this connection authenticated (signIntermediateCsr
    // refuses a CSR naming any other identity), limited to its vault.
    providerCaRequest: async (env) => {
      if (!('providerCaRequest' in env)) return;
      const { requestId, caCsrPem } = env.providerCaRequest;
      try {
        if (!deps.providerCa) {
          throw new SecondsiteError('SS_UNAVAILABLE', 'this coordinator signs no provider CAs');
        }
        const caCertPem = await deps.providerCa({
          vault: vault.name,
          identityName: caller.identityName,
          caCsrPem,
          now: deps.clock.now(),
        });
        deps.log.info({ vault: vault.name, server: server.name }, 'signed a successor provider CA');
        sendTo(ws, { providerCaReply: { requestId, caCertPem } });
      } catch (e) {
        const err = toError(e);
        deps.log.warn({ code: err.code, msg: err.message }, 'provider CA request refused');
        sendTo(ws, { providerCaReply: { requestId, caCertPem: '', error: errorDetailOf(err) } });
      }
    },
    inventoryReport: async (env) => {
      if (!('inventoryReport' in env)) return;
      const { inventory } = env.inventoryReport;
      await deps.inventory.reportInventory(
        vault.id,
        server.name,
        server.version,
        validInventory(inventory),
      );
    },
  };
}

/** The authenticated channel of a registered provider; returns its message listener. */
async function providerSession(
  ws: WebSocket,
  socket: TLSSocket,
  deps: AgentChannelDeps,
): Promise<(data: Buffer) => void> {
  const caller = await authenticate(socket, deps);
  const log = deps.log.child({ vault: caller.vault.name, server: caller.server.name });
  const session: ChannelSession = {
    vaultId: caller.vault.id,
    identityName: caller.identityName,
    send: (env) => sendTo(ws, env),
    close: (code, reason) => ws.close(code, reason),
  };
  let greeted = false;
  const handlers = providerHandlers(ws, caller, session, deps, () => {
    greeted = true;
    log.info('provider connected');
  });
  ws.on('close', () => {
    deps.hub.detach(session);
    log.info('provider disconnected');
  });
  return (data: Buffer): void => {
    void (async () => {
      try {
        // TLS checked validity at the handshake only; the connection may outlive the cert.
        assertPeerCertificateCurrent(caller.peer, deps.clock.now());
        const env = decodeEnvelope(data);
        const handler = env.body === undefined ? undefined : handlers[env.body];
        if (handler === undefined || (!greeted && env.body !== 'hello')) {
          throw new SecondsiteError('SS_PROTOCOL', `unexpected ${env.body ?? 'empty'} frame`);
        }
        await handler(env);
      } catch (e) {
        log.warn({ err: e }, 'closing the agent channel');
        refuse(ws, toError(e));
      }
    })();
  };
}

export interface AgentChannel {
  close(): Promise<void>;
}

export function attachAgentChannel(server: Server, deps: AgentChannelDeps): AgentChannel {
  const wss = new WebSocketServer({ noServer: true, maxPayload: AGENT_MAX_FRAME });
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== AGENT_CHANNEL_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (deps.trace !== undefined) {
        const trace = deps.trace;
        ws.on('message', (d: Buffer) => trace(d));
      }
      const tls = req.socket as TLSSocket;
      const hasCert = typeof tls.getPeerCertificate === 'function' && tls.authorized === true;
      if (!hasCert) {
        registrationSession(ws, deps);
        return;
      }
      // The provider sends hello at once; frames that arrive while its identity is being
      // looked up are kept and replayed in order.
      const early: Buffer[] = [];
      const keep = (d: Buffer): void => void early.push(d);
      ws.on('message', keep);
      providerSession(ws, tls, deps).then(
        (onMessage) => {
          ws.off('message', keep);
          ws.on('message', onMessage);
          for (const d of early.splice(0)) onMessage(d);
        },
        (e: unknown) => {
          deps.log.warn({ err: e }, 'agent connection refused');
          refuse(ws, toError(e));
        },
      );
    });
  };
  server.on('upgrade', onUpgrade);
  return {
    async close() {
      server.off('upgrade', onUpgrade);
      deps.hub.closeAll();
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
