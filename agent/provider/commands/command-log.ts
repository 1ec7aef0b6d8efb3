/** Coordinator commands this provider answered (<data>/answered-commands.json). */
import { CommandLog as GenericCommandLog } from '../../common/command-log.ts';
import type { AgentCommandResult } from '../../../common/wire/agent-channel-messages.ts';

export type CommandLog = GenericCommandLog<AgentCommandResult>;

export const CommandLog = {
  open: (dataDir: string): Promise<CommandLog> =>
    GenericCommandLog.open<AgentCommandResult>(dataDir, 'answered-commands.json'),
};
