/**
 * Answered commands, kept on disk so each command id is applied once: a command resent after a
 * reconnect or a restart gets the first answer again without running a second time
 * (ARCHITECTURE.md "Control plane"). The provider keeps one for coordinator commands, the host
 * one for provider commands.
 *
 * The answer is saved (write, fsync, rename) before it is sent, so a crash between applying and
 * answering at worst re-applies a command whose effect is idempotent. Bounded to the newest
 * MAX_ENTRIES ids: senders resend only commands still pending, far fewer than that.
 */
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';

const MAX_ENTRIES = 1000;

export class CommandLog<Answer> {
  private constructor(
    private readonly path: string,
    private readonly answers: Map<string, Answer>,
  ) {}

  /** Opens (or starts) the log at `<dataDir>/<fileName>`. */
  static async open<A>(dataDir: string, fileName: string): Promise<CommandLog<A>> {
    const path = join(dataDir, fileName);
    let entries: [string, A][] = [];
    try {
      entries = JSON.parse(await readFile(path, 'utf8')) as [string, A][];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    return new CommandLog(path, new Map(entries));
  }

  /** The first answer given to `id`, or undefined if it was never answered. */
  answered(id: string): Answer | undefined {
    return this.answers.get(id);
  }

  has(id: string): boolean {
    return this.answers.has(id);
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
