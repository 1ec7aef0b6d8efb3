/**
 * One command to one host, through the host's provider (agent_channel.proto HostRelayCommand).
 * The command id comes from the job step, so a step re-run after a coordinator restart sends
 * the same id and the host answers it once.
 */
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { HostCommand, HostCommandResult } from '../../common/wire/host-control-messages.ts';
import type { ChannelHub } from '../channel/channel-hub.ts';
import { identityNameOf } from '../domain/server.ts';

/** How long a step waits for a host's answer (a host restarting is waited for). */
export const HOST_COMMAND_TIMEOUT_MS = 90_000;

export type HostCommandBody = Omit<HostCommand, 'commandId'>;

export async function sendHostCommand(
  hub: ChannelHub,
  a: {
    vaultId: string;
    server: string;
    host: string;
    commandId: string;
    command: HostCommandBody;
    signal: AbortSignal;
    timeoutMs?: number;
  },
): Promise<HostCommandResult> {
  const result = await hub.sendCommand({
    vaultId: a.vaultId,
    identityName: identityNameOf(a.server),
    commandId: a.commandId,
    command: { host: { host: a.host, command: { commandId: a.commandId, ...a.command } } },
    timeoutMs: a.timeoutMs ?? HOST_COMMAND_TIMEOUT_MS,
    signal: a.signal,
  });
  if (result.host === undefined || result.host === null) {
    throw new SecondsiteError(
      'SS_PROTOCOL',
      `server ${a.server} answered a command for host ${a.host} without the host's result`,
      { server: a.server, host: a.host },
    );
  }
  return result.host;
}
