/**
 * What the provider does for each coordinator command, as a table keyed by the command's kind.
 * Handlers run at most once per command id (see command-log.ts).
 *
 * Two lanes:
 *  - local commands (sync_cloud) run one at a time, so a resend racing its original cannot
 *    apply it twice;
 *  - relayed host commands (`host`, HostRelayCommand) run concurrently with everything else:
 *    one may wait up to a minute for a disconnected host, which must not hold up the others.
 *    One id is still relayed once: a resend of an id in flight joins it, and an answered id
 *    gets the recorded answer. The host also applies each id once (its own command log), so
 *    an id relayed again after a provider restart has no second effect there either.
 * Recorded are the answers that are final: a host's answer (also a host's refusal) and local
 * outcomes. A relay that failed on the way (host unknown, not connected, no answer in time)
 * is not recorded, so the coordinator's resend tries again; nor are list_points answers,
 * which only read.
 */
import { SecondsiteError, isSecondsiteError } from '../../../common/errors/errors.ts';
import {
  errorDetailOf,
  type AgentCommand,
  type AgentCommandResult,
} from '../../../common/wire/agent-channel-messages.ts';
import type { HostCommand, HostCommandResult } from '../../../common/wire/host-control-messages.ts';
import type { Site } from '../site/site-file.ts';
import { cloudInfo } from '../site/site-inventory.ts';
import type { CommandLog } from './command-log.ts';

/** A handler's answer, and whether it is final (recorded for resends). */
interface Outcome {
  readonly result: AgentCommandResult;
  readonly record: boolean;
}
type Handler = (command: AgentCommand, id: string) => Promise<Outcome>;

type Kind = 'syncCloud' | 'host';
/** The command's body for `kind`; the dispatcher picked the handler by that kind. */
export function bodyOf<K extends Kind>(
  command: AgentCommand,
  kind: K,
): Extract<AgentCommand, Record<K, unknown>>[K] {
  const body = (command as Partial<Record<Kind, unknown>>)[kind];
  if (body === undefined || body === null) {
    throw new SecondsiteError('SS_PROTOCOL', `command has no ${kind} body`);
  }
  return body as Extract<AgentCommand, Record<K, unknown>>[K];
}

/** Sends a command to one of this provider's hosts (hosts/host-registry.ts `relay`). */
export interface HostRelayer {
  relay(host: string, command: HostCommand): Promise<HostCommandResult>;
}

export interface CommandDispatcher {
  /** Applies a command once; a known id gets its recorded answer. */
  dispatch(id: string, command: AgentCommand): Promise<AgentCommandResult>;
  /** How many commands were applied (not replayed) since start: for tests and logs. */
  applied(): number;
}

function kindOf(command: AgentCommand): string {
  return command.kind ?? Object.keys(command).find((k) => k !== 'kind') ?? '';
}

function failure(e: unknown): AgentCommandResult {
  const err = isSecondsiteError(e) ? e : new SecondsiteError('SS_INTERNAL', String(e));
  return { error: errorDetailOf(err) };
}

/** The `host` handler: relays, and answers with the host's result (its error copied up). */
function relayHandler(hosts: HostRelayer | undefined): Handler {
  return async (c, id) => {
    const { host, command } = bodyOf(c, 'host');
    if (!command) throw new SecondsiteError('SS_PROTOCOL', 'host command has no command');
    if (!hosts) {
      throw new SecondsiteError('SS_UNAVAILABLE', 'this provider does not serve hosts');
    }
    let answer: HostCommandResult;
    try {
      answer = await hosts.relay(host, { ...command, commandId: id });
    } catch (e) {
      return { result: failure(e), record: false };
    }
    const result: AgentCommandResult = {
      result: 'host',
      host: answer,
      ...(answer.error ? { error: answer.error } : {}),
    };
    return { result, record: kindOfHost(command) !== 'listPoints' };
  };
}

function kindOfHost(c: HostCommand): string {
  return c.kind ?? Object.keys(c).find((k) => k !== 'kind' && k !== 'commandId') ?? '';
}

export function commandDispatcher(
  site: () => Site,
  log: CommandLog,
  hosts?: HostRelayer,
): CommandDispatcher {
  let applied = 0;
  const handlers: Record<string, Handler> = {
    syncCloud: async (c) => {
      const { cloud } = bodyOf(c, 'syncCloud');
      const info = cloudInfo(site().file, cloud);
      if (info === undefined) {
        throw new SecondsiteError('SS_NOT_FOUND', `this site has no cloud named ${cloud}`, {
          cloud,
        });
      }
      return { result: { result: 'cloud', cloud: info }, record: true };
    },
    host: relayHandler(hosts),
  };
  // The log file is rewritten whole per record: records go one after the other.
  let writes: Promise<unknown> = Promise.resolve();
  const record = (id: string, result: AgentCommandResult): Promise<void> => {
    const done = writes.then(() => log.record(id, result));
    writes = done.catch(() => undefined);
    return done;
  };
  const apply = async (id: string, command: AgentCommand): Promise<AgentCommandResult> => {
    const kind = kindOf(command);
    const handler = handlers[kind];
    let outcome: Outcome;
    try {
      if (handler === undefined) {
        throw new SecondsiteError('SS_PROTOCOL', `unknown command ${kind || '(empty)'}`);
      }
      outcome = await handler(command, id);
    } catch (e) {
      outcome = { result: failure(e), record: true };
    }
    applied++;
    if (outcome.record) await record(id, outcome.result);
    return outcome.result;
  };
  const queue = { tail: Promise.resolve() as Promise<unknown> };
  const relaying = new Map<string, Promise<AgentCommandResult>>();
  return {
    applied: () => applied,
    dispatch(id, command) {
      if (kindOf(command) === 'host') {
        const known = log.answered(id);
        if (known !== undefined) return Promise.resolve(known);
        const joined = relaying.get(id);
        if (joined) return joined;
        // Removed only once recorded, so an id is always in flight or answered, never neither.
        const run = apply(id, command).finally(() => relaying.delete(id));
        relaying.set(id, run);
        return run;
      }
      const run = queue.tail.then(async () => log.answered(id) ?? apply(id, command));
      queue.tail = run.catch(() => undefined);
      return run;
    },
  };
}
