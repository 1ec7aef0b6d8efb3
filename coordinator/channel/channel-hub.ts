/**
 * Who is connected on the agent channel, and commands in flight (ARCHITECTURE.md "Control
 * plane"). One session per provider identity: a new connection replaces the old one.
 *
 * A command stays pending until its result arrives; when the provider reconnects, every
 * pending command is sent again with the same id (the provider answers an id once and repeats
 * that answer). Job steps make their command ids from the job and step, so a step re-run after
 * a coordinator restart resends the same id too.
 */
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { Logger } from '../../common/log/log.ts';
import type { Clock } from '../../common/time/clock.ts';
import {
  errorFromDetail,
  type AgentCommand,
  type AgentCommandResult,
  type AgentEnvelope,
} from '../../common/wire/agent-channel-messages.ts';
import type { Liveness } from '../inventory/inventory-service.ts';

export interface ChannelSession {
  readonly vaultId: string;
  readonly identityName: string;
  send(envelope: AgentEnvelope): void;
  close(code: number, reason: string): void;
}

interface Pending {
  readonly key: string;
  readonly envelope: AgentEnvelope;
  resolve(result: AgentCommandResult): void;
  reject(e: unknown): void;
}

const keyOf = (vaultId: string, identityName: string): string => `${vaultId}/${identityName}`;

export class ChannelHub implements Liveness {
  private readonly sessions = new Map<string, ChannelSession>();
  private readonly heartbeats = new Map<string, number>();
  private readonly pending = new Map<string, Pending>();

  constructor(
    readonly heartbeatMs: number,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  attach(session: ChannelSession): void {
    const key = keyOf(session.vaultId, session.identityName);
    const old = this.sessions.get(key);
    if (old !== undefined && old !== session) old.close(4000, 'replaced by a newer connection');
    this.sessions.set(key, session);
    this.heartbeats.set(key, this.clock.now());
    for (const [id, p] of this.pending) {
      if (p.key === key) {
        this.log.info({ command: id, server: session.identityName }, 'resending command');
        session.send(p.envelope);
      }
    }
  }

  detach(session: ChannelSession): void {
    const key = keyOf(session.vaultId, session.identityName);
    if (this.sessions.get(key) === session) {
      this.sessions.delete(key);
      this.heartbeats.delete(key);
    }
  }

  heartbeat(session: ChannelSession): void {
    const key = keyOf(session.vaultId, session.identityName);
    if (this.sessions.get(key) === session) this.heartbeats.set(key, this.clock.now());
  }

  liveness(vaultId: string, identityName: string): { open: boolean; lastHeartbeatAt?: number } {
    const key = keyOf(vaultId, identityName);
    const last = this.heartbeats.get(key);
    return {
      open: this.sessions.has(key),
      ...(last === undefined ? {} : { lastHeartbeatAt: last }),
    };
  }

  /** A result for a command; results for unknown or foreign ids are ignored (late duplicates). */
  onResult(session: ChannelSession, commandId: string, result: AgentCommandResult): void {
    const p = this.pending.get(commandId);
    if (p === undefined || p.key !== keyOf(session.vaultId, session.identityName)) return;
    this.pending.delete(commandId);
    if (result.error) p.reject(errorFromDetail(result.error));
    else p.resolve(result);
  }

  /**
   * Sends a command and resolves with its result. Waits for the provider to connect; gives up
   * with SS_UNAVAILABLE after `timeoutMs` without a result, or when the signal aborts.
   */
  sendCommand(a: {
    vaultId: string;
    identityName: string;
    commandId: string;
    command: AgentCommand;
    timeoutMs: number;
    signal: AbortSignal;
  }): Promise<AgentCommandResult> {
    const key = keyOf(a.vaultId, a.identityName);
    const envelope: AgentEnvelope = { commandId: a.commandId, command: a.command };
    return new Promise<AgentCommandResult>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        a.signal.removeEventListener('abort', onAbort);
        this.pending.delete(a.commandId);
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new SecondsiteError(
            'SS_UNAVAILABLE',
            `server ${a.identityName} did not answer command ${a.commandId}; check that its provider is running and connected`,
            { server: a.identityName, command: a.commandId },
          ),
        );
      }, a.timeoutMs);
      const onAbort = (): void => {
        done();
        reject(a.signal.reason);
      };
      a.signal.addEventListener('abort', onAbort, { once: true });
      this.pending.set(a.commandId, {
        key,
        envelope,
        resolve: (r) => (done(), resolve(r)),
        reject: (e) => (done(), reject(e)),
      });
      this.sessions.get(key)?.send(envelope);
    });
  }

  closeAll(): void {
    for (const s of this.sessions.values()) s.close(1001, 'coordinator stopping');
    this.sessions.clear();
  }
}
