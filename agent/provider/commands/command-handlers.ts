/**
 * What the provider does for each coordinator command, as a table keyed by the command's kind.
 * Handlers run at most once per command id (see command-log.ts).
 */
import { SecondsiteError, isSecondsiteError } from '../../../common/errors/errors.ts';
import {
  errorDetailOf,
  type AgentCommand,
  type AgentCommandResult,
} from '../../../common/wire/agent-channel-messages.ts';
import type { Site } from '../site/site-file.ts';
import { cloudInfo } from '../site/site-inventory.ts';
import type { CommandLog } from './command-log.ts';

type Handler = (command: AgentCommand) => Promise<AgentCommandResult>;

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

export interface CommandDispatcher {
  /** Applies a command once; a known id gets its recorded answer. */
  dispatch(id: string, command: AgentCommand): Promise<AgentCommandResult>;
  /** How many commands were applied (not replayed) since start: for tests and logs. */
  applied(): number;
}

export function commandDispatcher(site: () => Site, log: CommandLog): CommandDispatcher {
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
      return { result: 'cloud', cloud: info };
    },
  };
  const queue = { tail: Promise.resolve() as Promise<unknown> };
  return {
    applied: () => applied,
    // One command at a time, so a resend racing its original cannot apply it twice.
    dispatch(id, command) {
      const run = queue.tail.then(async () => {
        const known = log.answered(id);
        if (known !== undefined) return known;
        const kind = command.kind ?? Object.keys(command).find((k) => k !== 'kind') ?? '';
        const handler = handlers[kind];
        let result: AgentCommandResult;
        try {
          if (handler === undefined) {
            throw new SecondsiteError('SS_PROTOCOL', `unknown command ${kind || '(empty)'}`);
          }
          result = await handler(command);
        } catch (e) {
          const err = isSecondsiteError(e) ? e : new SecondsiteError('SS_INTERNAL', String(e));
          result = { error: errorDetailOf(err) };
        }
        applied++;
        await log.record(id, result);
        return result;
      });
      queue.tail = run.catch(() => undefined);
      return run;
    },
  };
}
