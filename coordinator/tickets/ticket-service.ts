/**
 * The ticket service of each vault (docs/security.md "The ticket service"): Kerberos' TGS
 * exchange without a TGT, the host's authenticated path (control stream to its provider, then
 * the provider's agent channel) standing in for it.
 *
 * A request arrives from provider P of vault V on behalf of host H (P verified H's
 * certificate); the service answers every request, refusals included, so the host is never
 * left waiting:
 *  - register_key: stores H's long-term key (host-keys.ts) if P reports H;
 *  - ticket: H asks for a ticket to peer host Q for VM vm under epoch e. Granted only when the
 *    vault's replicated item `vm` has H (on P) on one side and Q on the other, e is the item's
 *    current epoch and the item is not disabled; the ticket is issued under Q's current key
 *    (10 h, renewable to 7 days), its session key sealed for H under H's own key
 *    (common/tickets/grant.ts). A renewal keeps the session key up to renew-till.
 *  - neither is answered for a revoked host (revocation-service.ts), nor is a ticket granted
 *    for a revoked peer: SS_REVOKED. Tickets already issued are refused by the peer host
 *    itself, which holds the same list (set_revoked).
 * Nothing secret is logged: identities, versions and times only.
 */
import { z } from 'zod';
import { formatIdentity, hostIdentity } from '../../certs/identity.ts';
import { SecondsiteError, isSecondsiteError } from '../../common/errors/errors.ts';
import type { Logger } from '../../common/log/log.ts';
import type { Clock } from '../../common/time/clock.ts';
import { KEY_BYTES } from '../../common/tickets/crypto.ts';
import { sealGrant } from '../../common/tickets/grant.ts';
import {
  bytes,
  type TicketMsg,
  type TicketServiceReplyMsg,
} from '../../common/tickets/messages.ts';
import { TICKET_LIFETIME, issueTicket, openTicket } from '../../common/tickets/ticket.ts';
import { errorDetailOf, type HostTicketRequest } from '../../common/wire/agent-channel-messages.ts';
import { sameServer } from '../domain/mapping.ts';
import type { ItemRecord } from '../domain/protection.ts';
import type { HostKeys } from './host-keys.ts';

const buf = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be bytes');
const ticketSchema = z.object({
  server: z.string().max(300),
  keyVersion: z.number().int().min(1),
  sealedBody: buf,
});
const requestSchema = z.object({
  host: z.string().min(1).max(80),
  request: z.object({
    requestId: z.string().min(1).max(100),
    body: z.enum(['registerKey', 'ticket']),
    registerKey: z.object({ keyVersion: z.number().int().min(1), key: buf }).nullish(),
    ticket: z
      .object({
        peerHost: z.string().min(1).max(80),
        vm: z.string().min(1).max(200),
        epoch: z.union([z.string().regex(/^\d+$/), z.number().int().min(0)]),
        nonce: buf,
        renew: ticketSchema.nullish(),
      })
      .nullish(),
  }),
});

export interface TicketServiceDeps {
  readonly keys: HostKeys;
  /** The vault's replicated item of a VM (protection-service's ItemRepo). */
  readonly item: (vaultId: string, vm: string) => Promise<ItemRecord | undefined>;
  /** Whether provider `server` reports host `host` (the coordinator's host records). */
  readonly reports: (vaultId: string, server: string, host: string) => Promise<boolean>;
  /** Whether host identity `uri` is revoked in the vault (absent: nothing is). */
  readonly revoked?: (vaultId: string, uri: string) => Promise<boolean>;
  readonly clock: Clock;
  readonly log: Logger;
}

export interface Asker {
  readonly vaultId: string;
  /** The vault's name (identity URIs carry it). */
  readonly vaultName: string;
  /** The provider that relayed the request. */
  readonly server: string;
}

const sameHost = (a: string | null, b: string): boolean =>
  a !== null && a.toLowerCase() === b.toLowerCase();

function notPaired(message: string, details: Record<string, unknown>): SecondsiteError {
  return new SecondsiteError('SS_NOT_PAIRED', message, details);
}

export class TicketService {
  constructor(private readonly d: TicketServiceDeps) {}

  /** Answers one relayed request; never throws (a refusal is the reply's error). */
  async handle(asker: Asker, raw: HostTicketRequest): Promise<TicketServiceReplyMsg> {
    const requestId = String(raw?.request?.requestId ?? '');
    try {
      const parsed = requestSchema.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new SecondsiteError(
          'SS_PROTOCOL',
          `ticket request: ${issue?.path.join('.')} ${issue?.message}`,
        );
      }
      const { host, request } = parsed.data;
      if (!(await this.d.reports(asker.vaultId, asker.server, host))) {
        throw new SecondsiteError(
          'SS_UNAUTHENTICATED',
          `server ${asker.server} reports no host ${host}`,
          { host },
        );
      }
      await this.assertNotRevoked(asker, host);
      if (request.body === 'registerKey' && request.registerKey) {
        const key = bytes(request.registerKey.key);
        if (key.length !== KEY_BYTES) {
          throw new SecondsiteError('SS_PROTOCOL', `a long-term key is ${KEY_BYTES} bytes`);
        }
        const version = request.registerKey.keyVersion;
        const outcome = await this.d.keys.register(
          asker.vaultId,
          asker.server,
          host,
          { version, key },
          this.d.clock.now(),
        );
        this.d.log.info({ host, version, outcome }, 'host ticket key registered');
        return { requestId };
      }
      if (request.body === 'ticket' && request.ticket) {
        const t = request.ticket;
        const grant = await this.grant(asker, host, {
          peerHost: t.peerHost,
          vm: t.vm,
          epoch: Number(t.epoch),
          nonce: bytes(t.nonce),
          ...(t.renew ? { renew: { ...t.renew, sealedBody: bytes(t.renew.sealedBody) } } : {}),
        });
        return { requestId, grant };
      }
      throw new SecondsiteError('SS_PROTOCOL', 'empty ticket service request');
    } catch (e) {
      const err = isSecondsiteError(e) ? e : new SecondsiteError('SS_INTERNAL', 'internal error');
      if (err.code === 'SS_INTERNAL') this.d.log.error({ err: e }, 'ticket service failed');
      else this.d.log.warn({ code: err.code, msg: err.message }, 'ticket request refused');
      return { requestId, error: errorDetailOf(err) };
    }
  }

  /** SS_REVOKED when `host` of the asker's vault is on the vault's revoked list. */
  private async assertNotRevoked(asker: Asker, host: string): Promise<void> {
    const uri = formatIdentity(hostIdentity(asker.vaultName, host.toLowerCase()));
    if (this.d.revoked && (await this.d.revoked(asker.vaultId, uri))) {
      throw new SecondsiteError('SS_REVOKED', `host ${host} has been revoked`, { host: uri });
    }
  }

  /** Checks the pairing, then issues (or renews) the ticket and seals it for the asker. */
  private async grant(
    asker: Asker,
    host: string,
    t: { peerHost: string; vm: string; epoch: number; nonce: Buffer; renew?: TicketMsg },
  ): Promise<NonNullable<TicketServiceReplyMsg['grant']>> {
    const item = await this.d.item(asker.vaultId, t.vm);
    const details = { vm: t.vm, host, peer: t.peerHost };
    if (item === undefined || item.state === 'disabled') {
      throw notPaired(`${t.vm} is not a replicated item of this vault`, details);
    }
    const sides = [
      { server: item.sourceServer, host: item.sourceHost },
      { server: item.targetServer, host: item.targetHost },
    ];
    const mine = sides.findIndex(
      (s) => sameServer(s.server, asker.server) && sameHost(s.host, host),
    );
    const peer = sides[1 - mine];
    if (mine < 0 || peer === undefined || !sameHost(peer.host, t.peerHost)) {
      throw notPaired(`hosts ${host} and ${t.peerHost} are not paired for ${t.vm}`, details);
    }
    if (item.epoch !== t.epoch) {
      throw notPaired(`${t.vm} runs under epoch ${item.epoch}, not ${t.epoch}`, {
        ...details,
        epoch: item.epoch,
      });
    }
    await this.assertNotRevoked(asker, t.peerHost);
    const peerKey = await this.d.keys.current(asker.vaultId, t.peerHost);
    const ownKey = await this.d.keys.current(asker.vaultId, host);
    if (!peerKey || !sameServer(peerKey.server, peer.server) || !ownKey) {
      throw new SecondsiteError(
        'SS_UNAVAILABLE',
        `${peerKey ? host : t.peerHost} has not registered its ticket key yet; check that its host agent runs and is connected`,
        { host: peerKey ? host : t.peerHost },
      );
    }
    const client = formatIdentity(hostIdentity(asker.vaultName, host.toLowerCase()));
    const server = formatIdentity(hostIdentity(asker.vaultName, t.peerHost.toLowerCase()));
    const now = this.d.clock.now();
    let renewTill = now + TICKET_LIFETIME.maxRenewMs;
    let sessionKey: Buffer | undefined;
    if (t.renew) {
      // A renewal keeps the session key until renew-till; one that does not open (the peer
      // rotated its key, or it was altered) or is past renew-till gets a new ticket instead.
      try {
        const old = openTicket(t.renew, server, (v) =>
          v === peerKey.key.version ? peerKey.key.key : undefined,
        );
        if (old.client === client && old.renewTill > now && old.endTime >= now) {
          renewTill = old.renewTill;
          sessionKey = old.sessionKey;
        }
      } catch {
        sessionKey = undefined;
      }
    }
    const creds = issueTicket({
      client,
      server,
      serverKey: peerKey.key,
      now,
      renewTill,
      ...(sessionKey ? { sessionKey } : {}),
    });
    this.d.log.info(
      {
        client,
        server,
        vm: t.vm,
        keyVersion: peerKey.key.version,
        endTime: creds.endTime,
        renewed: sessionKey !== undefined,
      },
      'ticket issued',
    );
    return sealGrant(creds, ownKey.key, { startTime: now, renewTill }, t.nonce);
  }
}
