/**
 * The provider's end of the authenticated agent channel: keeps one WebSocket to the
 * coordinator open, reconnecting with capped exponential backoff and jitter.
 *
 * States: connecting → connected → backoff → connecting … ; any state → closed (shutdown).
 * While connected: hello first, then a heartbeat every interval the welcome names; commands
 * are applied once per id (command-handlers.ts) and answered with the same id.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import { isSecondsiteError, SecondsiteError } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import {
  AGENT_PROTOCOL,
  agentChannelCodec,
  decodeEnvelope,
  errorDetailOf,
  errorFromDetail,
  type AgentEnvelope,
  type ProviderCaReply,
  type SiteInventoryMsg,
} from '../../../common/wire/agent-channel-messages.ts';
import type { TicketServiceReplyMsg } from '../../../common/tickets/messages.ts';
import type { StoredIdentity } from '../../common/identity-store.ts';
import type { CommandDispatcher } from '../commands/command-handlers.ts';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from '../domain/backoff.ts';
import { openCoordinatorSocket, type OpenSocket } from './coordinator-socket.ts';

export type ChannelState = 'connecting' | 'connected' | 'backoff' | 'closed';

export interface ChannelClientOptions {
  readonly identity: StoredIdentity;
  readonly version: string;
  readonly inventory: () => SiteInventoryMsg;
  readonly commands: CommandDispatcher;
  readonly proxy?: URL;
  readonly backoff?: BackoffOptions;
  readonly now: () => number;
  readonly log: Logger;
  /** Called after each welcome: a place to resend state the coordinator may have missed. */
  readonly onConnected?: () => void;
  /** The coordinator's answers to relayed ticket service requests (host_ticket_reply). */
  readonly onTicketReply?: (reply: TicketServiceReplyMsg) => void;
}

export interface ChannelClient {
  state(): ChannelState;
  /** Sends a frame when connected (after the welcome); false when it was dropped. */
  send(env: AgentEnvelope): boolean;
  /**
   * Step 8: asks the coordinator to sign a successor of this provider's CA; resolves the CA
   * PEM. Fails at once when not connected, as soon as the connection it went out on closes
   * (the answer would come back on that one only), and after REQUEST_MS without an answer.
   */
  requestProviderCa(caCsrPem: string): Promise<string>;
  /** Connects and reconnects until the signal aborts. */
  run(signal: AbortSignal): Promise<void>;
  shutdown(): Promise<void>;
}

/** A CA signature is one small exchange; 30 s covers a slow WAN and a busy coordinator. */
const REQUEST_MS = 30_000;

/** A request that got no answer from the coordinator (SS_UNAVAILABLE: retried later). */
function failed(requestId: string, reason: 'not-connected' | 'channel-closed'): ProviderCaReply {
  const why =
    reason === 'not-connected'
      ? 'not connected to the coordinator'
      : 'the channel closed before the coordinator answered';
  return {
    requestId,
    caCertPem: '',
    error: errorDetailOf(new SecondsiteError('SS_UNAVAILABLE', why, { reason })),
  };
}

export function createChannelClient(opts: ChannelClientOptions): ChannelClient {
  /** Requests in flight, by id, with the connection each went out on. */
  const waiting = new Map<
    string,
    { readonly ws: OpenSocket['ws'] | undefined; settle(reply: ProviderCaReply): void }
  >();
  let state: ChannelState = 'connecting';
  let current: OpenSocket['ws'] | undefined;
  const stop = new AbortController();
  const set = (s: ChannelState): void => {
    if (state !== s) opts.log.info({ state: s }, 'channel state');
    state = s;
  };

  /** Serves one connection until it closes. Resolves true when it reached `connected`. */
  async function serve(ws: OpenSocket['ws']): Promise<boolean> {
    const send = (env: AgentEnvelope): void => {
      if (ws.readyState === ws.OPEN) ws.send(agentChannelCodec().encode(env));
    };
    let welcomed = false;
    let beat: NodeJS.Timeout | undefined;
    send({
      hello: {
        protocolMin: AGENT_PROTOCOL.min,
        protocolMax: AGENT_PROTOCOL.max,
        version: opts.version,
        inventory: opts.inventory(),
      },
    });
    ws.on('message', (data: Buffer) => {
      let env: AgentEnvelope;
      try {
        env = decodeEnvelope(data);
      } catch (e) {
        opts.log.warn({ err: e }, 'unreadable frame; reconnecting');
        ws.terminate();
        return;
      }
      if (env.body === 'welcome' && 'welcome' in env) {
        welcomed = true;
        set('connected');
        opts.onConnected?.();
        const every = Math.max(50, env.welcome.heartbeatMs);
        // A silent partition shows as missing pongs: after three intervals without one the
        // connection is dropped and rebuilt, rather than waiting for TCP to notice.
        let lastPong = Date.now();
        ws.on('pong', () => (lastPong = Date.now()));
        beat = setInterval(() => {
          if (Date.now() - lastPong > 3 * every) {
            opts.log.warn('no answer from the coordinator for three heartbeats; reconnecting');
            ws.terminate();
            return;
          }
          send({ heartbeat: { sentAtMs: String(opts.now()) } });
          ws.ping();
        }, every);
      } else if (env.body === 'command' && 'command' in env && welcomed) {
        const id = env.commandId ?? '';
        void opts.commands.dispatch(id, env.command).then(
          (commandResult) => send({ commandId: id, commandResult }),
          (e: unknown) => opts.log.error({ err: e, command: id }, 'command failed to record'),
        );
      } else if (env.body === 'hostTicketReply' && 'hostTicketReply' in env && welcomed) {
        opts.onTicketReply?.(env.hostTicketReply);
      } else if (env.body === 'providerCaReply' && 'providerCaReply' in env && welcomed) {
        waiting.get(env.providerCaReply.requestId)?.settle(env.providerCaReply);
      } else if (env.body === 'error' && 'error' in env) {
        const err = errorFromDetail(env.error);
        opts.log.warn({ code: err.code, msg: err.message }, 'coordinator refused the channel');
      }
    });
    await new Promise<void>((resolve) => ws.once('close', () => resolve()));
    clearInterval(beat);
    // The coordinator answers on the connection a request came in on: with it gone, none
    // will come, and waiting out REQUEST_MS would only delay the caller's retry.
    for (const [requestId, w] of waiting) {
      if (w.ws === ws) w.settle(failed(requestId, 'channel-closed'));
    }
    return welcomed;
  }

  async function run(signal: AbortSignal): Promise<void> {
    const aborted = AbortSignal.any([signal, stop.signal]);
    const id = opts.identity;
    let attempt = 0;
    while (!aborted.aborted) {
      set('connecting');
      try {
        const { ws } = await openCoordinatorSocket({
          coordinatorUrl: id.info.coordinatorUrl,
          trust: {
            mode: 'verified',
            rootCaPem: id.rootCaPem,
            keyPem: id.clientKeyPem,
            certPem: id.clientCertPem,
          },
          ...(opts.proxy === undefined ? {} : { proxy: opts.proxy }),
          now: opts.now,
        });
        current = ws;
        if (aborted.aborted) ws.close(1001, 'stopping');
        if (await serve(ws)) attempt = 0;
      } catch (e) {
        const why = isSecondsiteError(e) ? e.message : String(e);
        opts.log.warn({ attempt, why }, 'cannot reach the coordinator');
      }
      current = undefined;
      if (aborted.aborted) break;
      set('backoff');
      const delay = backoffDelay(attempt++, Math.random(), opts.backoff ?? DEFAULT_BACKOFF);
      await sleep(delay, undefined, { signal: aborted }).catch(() => undefined);
    }
    set('closed');
  }

  function sendNow(env: AgentEnvelope): boolean {
    const ws = current;
    if (state !== 'connected' || ws === undefined || ws.readyState !== ws.OPEN) return false;
    ws.send(agentChannelCodec().encode(env));
    return true;
  }

  return {
    state: () => state,
    send: sendNow,
    requestProviderCa(caCsrPem) {
      const requestId = randomUUID();
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(requestId);
          reject(
            new SecondsiteError('SS_UNAVAILABLE', 'no answer from the coordinator', {
              reason: 'no-answer',
            }),
          );
        }, REQUEST_MS);
        waiting.set(requestId, {
          ws: current,
          settle(reply) {
            clearTimeout(timer);
            waiting.delete(requestId);
            if (reply.error) reject(errorFromDetail(reply.error));
            else resolve(reply.caCertPem);
          },
        });
        if (!sendNow({ providerCaRequest: { requestId, caCsrPem } })) {
          waiting.get(requestId)?.settle(failed(requestId, 'not-connected'));
        }
      });
    },
    run,
    async shutdown() {
      stop.abort();
      current?.close(1001, 'provider stopping');
    },
  };
}
