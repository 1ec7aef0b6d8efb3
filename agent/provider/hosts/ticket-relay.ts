/**
 * The provider's relay between its hosts and the coordinator's ticket service
 * (tickets.proto, agent_channel.proto step 7). A host's request arrives on its control stream
 * (the host authenticated by its certificate); the relay gives it a fresh id of its own, sends
 * it on the agent channel under the host's name, and sends the answer back on the host's
 * session with the host's id restored. The relay holds requests only in memory and logs no
 * content (a key registration carries the host's long-term key; a grant a sealed session key).
 *
 * When the channel is down the request is refused at once (SS_UNAVAILABLE): the host retries.
 * A request not answered within `timeoutMs` is refused the same way; a host session that ends
 * drops its requests.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import type {
  TicketServiceReplyMsg,
  TicketServiceRequestMsg,
} from '../../../common/tickets/messages.ts';
import { errorDetailOf, type AgentEnvelope } from '../../../common/wire/agent-channel-messages.ts';
import type { HostSession } from './host-registry.ts';

/** Cheap shape check before relaying (the coordinator validates everything again). */
const requestShape = z.object({
  requestId: z.string().min(1).max(100),
  body: z.enum(['registerKey', 'ticket']),
});

interface Pending {
  readonly session: HostSession;
  readonly hostRequestId: string;
  readonly timer: NodeJS.Timeout;
}

export class TicketRelay {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly o: {
      /** Sends on the agent channel; false when it is not connected. */
      readonly send: (env: AgentEnvelope) => boolean;
      readonly log: Logger;
      /** @default 30 s */
      readonly timeoutMs?: number;
    },
  ) {}

  /** A host's request (HostFrame.ticket_service). */
  fromHost(session: HostSession, request: TicketServiceRequestMsg): void {
    const shape = requestShape.safeParse(request);
    if (!shape.success) {
      throw new SecondsiteError('SS_PROTOCOL', 'malformed ticket service request');
    }
    const hostRequestId = shape.data.requestId;
    const id = `tk-${randomBytes(12).toString('hex')}`;
    const refuse = (e: SecondsiteError): void =>
      session.send({ ticketService: { requestId: hostRequestId, error: errorDetailOf(e) } });
    const timer = setTimeout(() => {
      if (this.pending.delete(id)) {
        refuse(new SecondsiteError('SS_UNAVAILABLE', 'the ticket service did not answer'));
      }
    }, this.o.timeoutMs ?? 30_000);
    timer.unref();
    this.pending.set(id, { session, hostRequestId, timer });
    const sent = this.o.send({
      hostTicketRequest: { host: session.host, request: { ...request, requestId: id } },
    });
    this.o.log.debug({ host: session.host, kind: shape.data.body, sent }, 'ticket request');
    if (!sent) {
      clearTimeout(timer);
      this.pending.delete(id);
      refuse(
        new SecondsiteError('SS_UNAVAILABLE', 'the provider is not connected to the coordinator'),
      );
    }
  }

  /** The coordinator's answer (AgentEnvelope.host_ticket_reply); unknown ids are ignored. */
  fromCoordinator(reply: TicketServiceReplyMsg): void {
    const p = this.pending.get(reply.requestId);
    if (!p) return;
    this.pending.delete(reply.requestId);
    clearTimeout(p.timer);
    p.session.send({ ticketService: { ...reply, requestId: p.hostRequestId } });
  }

  /** A host session ended: its requests are forgotten (the host asks again). */
  drop(session: HostSession): void {
    for (const [id, p] of this.pending) {
      if (p.session === session) {
        clearTimeout(p.timer);
        this.pending.delete(id);
      }
    }
  }

  close(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
  }
}
