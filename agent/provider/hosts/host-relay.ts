/**
 * Relayed host commands (agent_channel.proto HostRelayCommand): the coordinator's command for
 * one host goes out on that host's current control session, with the agent command's id as
 * its command id, and the host's answer comes back as the relay's result.
 *
 * Per command id there is one pending relay (a resend of an id in flight joins it). States of
 * a pending relay:
 *   waiting (the host has no session) ──host connects──▶ sent ──answer──▶ done
 *   sent ──session ends──▶ waiting (sent again on the next session: the host applies an id
 *   once and answers a resend with its recorded outcome, so a resend has no second effect)
 *   waiting ──waitMs without a session──▶ failed SS_UNAVAILABLE (naming the host)
 *   sent ──answerMs without an answer──▶ failed SS_TIMEOUT
 * Failures are the relay's, not the host's: the caller does not record them, so a later
 * resend of the same id tries again.
 */
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type { Logger } from '../../../common/log/log.ts';
import type {
  HostCommand,
  HostCommandResult,
  ProviderFrame,
} from '../../../common/wire/host-control-messages.ts';

/** How long a relayed command waits for its host to connect. */
export const DEFAULT_RELAY_WAIT_MS = 60_000;
/** How long a connected host may take to answer (a pairing creates and fsyncs files). */
export const DEFAULT_RELAY_ANSWER_MS = 300_000;

export interface RelaySession {
  send(frame: ProviderFrame): void;
}

export interface HostRelayOptions {
  /** The host's open session now, if any. */
  readonly session: (host: string) => RelaySession | undefined;
  readonly log: Logger;
  /** @default DEFAULT_RELAY_WAIT_MS */
  readonly waitMs?: number;
  /** @default DEFAULT_RELAY_ANSWER_MS */
  readonly answerMs?: number;
}

interface Pending {
  readonly host: string;
  readonly command: HostCommand;
  readonly promise: Promise<HostCommandResult>;
  resolve(r: HostCommandResult): void;
  reject(e: SecondsiteError): void;
  /** The session it was sent on; undefined while waiting for one. */
  sentOn: RelaySession | undefined;
  timer: NodeJS.Timeout | undefined;
}

export class HostRelay {
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly o: HostRelayOptions) {}

  /** Relays `command` (its commandId set) to `host`; resolves with the host's answer. */
  send(host: string, command: HostCommand): Promise<HostCommandResult> {
    const id = command.commandId;
    const joined = this.pending.get(id);
    if (joined) return joined.promise;
    let resolve!: (r: HostCommandResult) => void;
    let reject!: (e: SecondsiteError) => void;
    const promise = new Promise<HostCommandResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const p: Pending = {
      host,
      command,
      promise,
      resolve,
      reject,
      sentOn: undefined,
      timer: undefined,
    };
    this.pending.set(id, p);
    const session = this.o.session(host);
    if (session) this.transmit(p, session);
    else this.wait(p);
    return promise;
  }

  /** A host (re)connected: everything pending for it goes out on the new session, in order. */
  attached(host: string, session: RelaySession): void {
    for (const p of this.pending.values()) {
      if (p.host === host && p.sentOn !== session) this.transmit(p, session);
    }
  }

  /** A host's session ended: what was sent on it waits for the next one. */
  detached(host: string, session: RelaySession): void {
    for (const p of this.pending.values()) {
      if (p.host === host && p.sentOn === session) {
        p.sentOn = undefined;
        this.wait(p);
      }
    }
  }

  /** A host answered; true when the answer was a relayed command's (consumed here). */
  answered(host: string, result: HostCommandResult): boolean {
    const p = this.pending.get(result.commandId);
    if (p?.host !== host) return false;
    this.settle(p);
    p.resolve(result);
    return true;
  }

  /** The provider stops: every relay in flight fails (the coordinator resends it later). */
  close(): void {
    for (const p of [...this.pending.values()]) {
      this.settle(p);
      p.reject(new SecondsiteError('SS_UNAVAILABLE', 'the provider is stopping', { host: p.host }));
    }
  }

  /** Relays in flight: for tests and logs. */
  inFlight(): number {
    return this.pending.size;
  }

  private transmit(p: Pending, session: RelaySession): void {
    clearTimeout(p.timer);
    p.sentOn = session;
    this.o.log.info(
      { host: p.host, command: p.command.commandId, kind: p.command.kind },
      'relaying a command to a host',
    );
    session.send({ command: p.command });
    p.timer = setTimeout(() => {
      this.settle(p);
      p.reject(
        new SecondsiteError(
          'SS_TIMEOUT',
          `host ${p.host} did not answer command ${p.command.commandId} in ${this.answerMs() / 1000} s`,
          { host: p.host, command: p.command.commandId },
        ),
      );
    }, this.answerMs()).unref();
  }

  private wait(p: Pending): void {
    clearTimeout(p.timer);
    const ms = this.o.waitMs ?? DEFAULT_RELAY_WAIT_MS;
    p.timer = setTimeout(() => {
      this.settle(p);
      p.reject(
        new SecondsiteError(
          'SS_UNAVAILABLE',
          `host ${p.host} is not connected to this provider (waited ${ms / 1000} s); check that its host agent runs and reaches the provider`,
          { host: p.host, command: p.command.commandId },
        ),
      );
    }, ms).unref();
  }

  private settle(p: Pending): void {
    clearTimeout(p.timer);
    this.pending.delete(p.command.commandId);
  }

  private answerMs(): number {
    return this.o.answerMs ?? DEFAULT_RELAY_ANSWER_MS;
  }
}
