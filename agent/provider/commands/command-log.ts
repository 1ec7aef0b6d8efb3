/**
 * Answered coordinator commands, kept on disk (<data>/answered-commands.json) so each command id
 * is applied once: a command resent after a reconnect or a restart gets the first answer again
 * without running a second time (ARCHITECTURE.md "Control plane").
 *
 * The answer is saved (write, fsync, rename) before it is sent, so a crash between applying and
 * answering at worst re-applies a command whose effect is idempotent (reading the site file).
 * Bounded to the newest MAX_ENTRIES ids: the coordinator resends only commands of running job
 * steps, far fewer than that.
 */
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentCommandResult } from '../../../common/wire/agent-channel-messages.ts';

const MAX_ENTRIES = 1000;

export class CommandLog {
  private constructor(
    private readonly path: string,
    private readonly answers: Map<string, AgentCommandResult>,
  ) {}

  static async open(dataDir: string): Promise<CommandLog> {
    const path = join(dataDir, 'answered-commands.json');
    let entries: [string, AgentCommandResult][] = [];
    try {
      entries = JSON.parse(await readFile(path, 'utf8')) as [string, AgentCommandResult][];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    return new CommandLog(path, new Map(entries));
  }

  answered(id: string): AgentCommandResult | undefined {
    return this.answers.get(id);
  }

  async record(id: string, result: AgentCommandResult): Promise<void> {
    this.answers.set(id, result);
    while (this.answers.size > MAX_ENTRIES) {
      const oldest = this.answers.keys().next().value;
      if (oldest === undefined) break;
      this.answers.delete(oldest);
    }
    const tmp = `${this.path}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify([...this.answers]));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.path);
  }
}
