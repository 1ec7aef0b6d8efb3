/**
 * What the host does for each provider command (host_control.proto step 4), as a table keyed
 * by the command's kind, applied at most once per id (command-log.ts). Commands run one at a
 * time, so a resend racing its original cannot apply it twice.
 */
import { SecondsiteError, isSecondsiteError } from '../../../common/errors/errors.ts';
import { errorDetailOf } from '../../../common/wire/agent-channel-messages.ts';
import type {
  CreateHostVmCommand,
  HostCommand,
} from '../../../common/wire/host-control-messages.ts';
import type { VmManager } from '../vm/vm-manager.ts';
import type { Answer, HostCommandLog } from './command-log.ts';

type Handler = (c: HostCommand) => Promise<void>;

/** Creates the VM unless it exists (an answer lost in a crash), then starts it if asked. */
async function createVm(vms: VmManager, c: CreateHostVmCommand): Promise<void> {
  const exists = vms.list().some((v) => v.config.name === c.name);
  if (!exists) {
    await vms.createVm({
      name: c.name,
      diskSizes: c.disks.map((d) => Number(d.sizeBytes)),
      nics: c.nics.map((n) => ({ network: n.network, subnet: n.subnet })),
    });
  }
  if (c.start) await vms.startVm(c.name);
}

export interface HostCommands {
  apply(command: HostCommand): Promise<Answer>;
}

export function hostCommands(vms: VmManager, log: HostCommandLog): HostCommands {
  const handlers: Record<string, Handler> = {
    createVm: async (c) => {
      if (c.createVm === undefined) throw new SecondsiteError('SS_PROTOCOL', 'empty create_vm');
      await createVm(vms, c.createVm);
    },
  };
  let tail: Promise<unknown> = Promise.resolve();
  return {
    apply(command) {
      const run = tail.then(async (): Promise<Answer> => {
        const known = log.answered(command.commandId);
        if (known !== undefined) return known;
        let answer: Answer = null;
        try {
          const handler = command.kind === undefined ? undefined : handlers[command.kind];
          if (handler === undefined) {
            throw new SecondsiteError(
              'SS_PROTOCOL',
              `unknown command ${command.kind ?? '(empty)'}`,
            );
          }
          await handler(command);
        } catch (e) {
          answer = errorDetailOf(
            isSecondsiteError(e) ? e : new SecondsiteError('SS_INTERNAL', String(e)),
          );
        }
        await log.record(command.commandId, answer);
        return answer;
      });
      tail = run.catch(() => undefined);
      return run;
    },
  };
}
