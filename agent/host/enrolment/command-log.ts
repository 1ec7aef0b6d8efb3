/**
 * Provider commands this host answered, on disk (<data>/answered-provider-commands.json), so
 * each command id is applied once: a command resent after a reconnect or a restart gets the
 * first answer again (ARCHITECTURE.md "Control plane"). The answer is saved (write, fsync,
 * rename) before it is sent. Bounded to the newest MAX_ENTRIES ids, far more than the VMs a
 * site file declares for one host.
 */
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { ErrorDetailMsg } from '../../../common/wire/host-control-messages.ts';

const MAX_ENTRIES = 1000;

/** null: applied successfully. */
export type Answer = ErrorDetailMsg | null;

export class HostCommandLog {
  private constructor(
    private readonly path: string,
    private readonly answers: Map<string, Answer>,
  ) {}

  static async open(dataDir: string): Promise<HostCommandLog> {
    const path = join(dataDir, 'answered-provider-commands.json');
    let entries: [string, Answer][] = [];
    try {
      entries = JSON.parse(await readFile(path, 'utf8')) as [string, Answer][];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    return new HostCommandLog(path, new Map(entries));
  }

  answered(id: string): Answer | undefined {
    return this.answers.get(id);
  }

  async record(id: string, answer: Answer): Promise<void> {
    this.answers.set(id, answer);
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
