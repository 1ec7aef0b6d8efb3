/**
 * The host's client of the coordinator's ticket service, over its control stream to the
 * provider (tickets.proto): registers this host's long-term key once per version after each
 * welcome until the service confirms it, and gets, caches and renews tickets to paired peers
 * for the senders (ticket-credentials.ts asks `credentials` once per connection).
 *
 * Cache, per (peer, VM, epoch): a ticket is used until half its life has passed, then renewed
 * (same session key, a new end, until its renew-till) or, when renewal is refused, replaced.
 * A ticket still valid is used while the service cannot be reached, so a coordinator or
 * provider outage shorter than a ticket's remaining life does not stop replication.
 */
import { randomBytes } from 'node:crypto';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { Clock } from '../../../common/time/clock.ts';
import { openGrant, type OpenedGrant } from '../../../common/tickets/grant.ts';
import type {
  HostKeyRegistrationMsg,
  TicketRequestMsg,
  TicketServiceReplyMsg,
  TicketServiceRequestMsg,
} from '../../../common/tickets/messages.ts';
import type { ClientCredentials } from '../../../common/tickets/ticket.ts';
import { errorFromDetail } from '../../../common/wire/agent-channel-messages.ts';
import type { HostKeyring } from './host-keys.ts';

type Body =
  | { body: 'registerKey'; registerKey: HostKeyRegistrationMsg }
  | { body: 'ticket'; ticket: TicketRequestMsg };

export interface HostTickets {
  /** The control stream is up (after the welcome): requests go through `send`. */
  attach(send: (request: TicketServiceRequestMsg) => void): void;
  /** The control stream ended: requests in flight fail (SS_UNAVAILABLE). */
  detach(): void;
  onReply(reply: TicketServiceReplyMsg): void;
  /** Registers the newest key unless the service confirmed it already. */
  registerKey(): Promise<void>;
  /** Credentials for a connection to `peerHost` (its identity URI `peerUri`) for a VM. */
  credentials(a: {
    peerHost: string;
    peerUri: string;
    vm: string;
    epoch: number;
  }): Promise<ClientCredentials>;
}

export function createHostTickets(o: {
  readonly self: string;
  readonly keys: HostKeyring;
  readonly clock: Clock;
  readonly log: Logger;
  /** @default 30 s */
  readonly timeoutMs?: number;
}): HostTickets {
  const log = o.log.child({ component: 'host-tickets' });
  let send: ((r: TicketServiceRequestMsg) => void) | undefined;
  const inFlight = new Map<
    string,
    { resolve(r: TicketServiceReplyMsg): void; reject(e: unknown): void }
  >();
  const cache = new Map<string, OpenedGrant>();
  const fetching = new Map<string, Promise<OpenedGrant>>();
  let registering: Promise<void> | undefined;

  function request(body: Body): Promise<TicketServiceReplyMsg> {
    const s = send;
    if (!s) {
      return Promise.reject(
        new SecondsiteError('SS_UNAVAILABLE', 'not connected to the provider (ticket service)'),
      );
    }
    const requestId = randomBytes(8).toString('hex');
    return new Promise<TicketServiceReplyMsg>((resolve, reject) => {
      const timer = setTimeout(() => {
        inFlight.delete(requestId);
        reject(new SecondsiteError('SS_UNAVAILABLE', 'the ticket service did not answer'));
      }, o.timeoutMs ?? 30_000);
      timer.unref();
      inFlight.set(requestId, {
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      s({ requestId, ...body });
    }).then((reply) => {
      if (reply.error) throw errorFromDetail(reply.error);
      return reply;
    });
  }

  async function fetch(
    a: { peerHost: string; peerUri: string; vm: string; epoch: number },
    renew: OpenedGrant | undefined,
  ): Promise<OpenedGrant> {
    const nonce = randomBytes(16);
    const reply = await request({
      body: 'ticket',
      ticket: {
        peerHost: a.peerHost,
        vm: a.vm,
        epoch: String(a.epoch),
        nonce,
        ...(renew ? { renew: renew.ticket } : {}),
      },
    });
    if (!reply.grant) throw new SecondsiteError('SS_PROTOCOL', 'a ticket reply without a grant');
    const grant = openGrant(reply.grant, { client: o.self, server: a.peerUri, nonce }, (v) =>
      o.keys.keyFor(v),
    );
    log.info({ peer: a.peerUri, vm: a.vm, endTime: grant.endTime }, 'ticket obtained');
    return grant;
  }

  return {
    attach(s) {
      send = s;
    },
    detach() {
      send = undefined;
      for (const p of inFlight.values()) {
        p.reject(new SecondsiteError('SS_UNAVAILABLE', 'the control stream ended'));
      }
      inFlight.clear();
    },
    onReply(reply) {
      const p = inFlight.get(reply.requestId);
      if (!p) return;
      inFlight.delete(reply.requestId);
      p.resolve(reply);
    },
    registerKey() {
      const key = o.keys.current();
      if (o.keys.registered() >= key.version) return Promise.resolve();
      registering ??= request({
        body: 'registerKey',
        registerKey: { keyVersion: key.version, key: key.key },
      })
        .then(() => {
          o.keys.markRegistered(key.version);
          log.info({ version: key.version }, 'ticket key registered');
        })
        .finally(() => (registering = undefined));
      return registering;
    },
    async credentials(a) {
      const id = `${a.peerUri} ${a.vm} ${a.epoch}`;
      const now = o.clock.now();
      const have = cache.get(id);
      if (have && now < have.startTime + (have.endTime - have.startTime) / 2) return have;
      let pending = fetching.get(id);
      if (!pending) {
        const renewable = have && have.renewTill > now && have.endTime > now ? have : undefined;
        pending = fetch(a, renewable).finally(() => fetching.delete(id));
        fetching.set(id, pending);
      }
      try {
        const got = await pending;
        cache.set(id, got);
        return got;
      } catch (e) {
        // The service is unreachable or refused: a ticket still valid keeps replication going.
        if (have && now < have.endTime) {
          log.warn(
            { err: (e as Error).message, peer: a.peerUri },
            'ticket renewal failed; using the current one',
          );
          return have;
        }
        throw e;
      }
    },
  };
}
