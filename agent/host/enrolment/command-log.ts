/** Provider commands this host answered (<data>/answered-provider-commands.json). */
import { CommandLog } from '../../common/command-log.ts';
import type { ErrorDetailMsg } from '../../../common/wire/host-control-messages.ts';

/** null: applied successfully. */
export type Answer = ErrorDetailMsg | null;

export type HostCommandLog = CommandLog<Answer>;

export const HostCommandLog = {
  open: (dataDir: string): Promise<HostCommandLog> =>
    CommandLog.open<Answer>(dataDir, 'answered-provider-commands.json'),
};
