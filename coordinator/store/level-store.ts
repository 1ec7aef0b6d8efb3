/**
 * The Store over LevelDB (classic-level through `level`) or, for tests, memory-level. Values
 * are JSON; state changes use synchronous writes so an acknowledged change survives a power
 * loss, not just a process crash. Every failure of the database becomes SS_IO.
 */
import { Level } from 'level';
import { MemoryLevel } from 'memory-level';
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { BatchOp, Store } from './store.ts';

/** The part of abstract-level this store uses (Level and MemoryLevel both provide it). */
interface Db {
  open(): Promise<void>;
  close(): Promise<void>;
  get(key: string): Promise<string | undefined>;
  put(key: string, value: string, options: { sync: boolean }): Promise<void>;
  del(key: string, options: { sync: boolean }): Promise<void>;
  batch(
    ops: Array<{ type: 'put'; key: string; value: string } | { type: 'del'; key: string }>,
    options: { sync: boolean },
  ): Promise<void>;
  iterator(range: { gte: string; lt: string }): {
    next(): Promise<[string, string] | undefined>;
    close(): Promise<void>;
  };
}

function ioError(op: string, e: unknown): SecondsiteError {
  const message = e instanceof Error ? e.message : String(e);
  return new SecondsiteError('SS_IO', `store ${op} failed: ${message}`, { op }, { cause: e });
}

async function guarded<T>(op: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof SecondsiteError) throw e;
    throw ioError(op, e);
  }
}

class LevelStore implements Store {
  constructor(
    private readonly db: Db,
    private readonly writeOptions: { sync: boolean },
  ) {}

  get<T>(key: string): Promise<T | undefined> {
    return guarded('get', async () => {
      const raw = await this.db.get(key);
      return raw === undefined ? undefined : (JSON.parse(raw) as T);
    });
  }

  put(key: string, value: unknown): Promise<void> {
    return guarded('put', () => this.db.put(key, JSON.stringify(value), this.writeOptions));
  }

  del(key: string): Promise<void> {
    return guarded('del', () => this.db.del(key, this.writeOptions));
  }

  batch(ops: readonly BatchOp[]): Promise<void> {
    const encoded = ops.map((op) =>
      op.type === 'put'
        ? { type: 'put' as const, key: op.key, value: JSON.stringify(op.value) }
        : { type: 'del' as const, key: op.key },
    );
    return guarded('batch', () => this.db.batch(encoded, this.writeOptions));
  }

  async *iterate<T>(prefix: string): AsyncIterable<readonly [string, T]> {
    // '\uffff' sorts after every character a key of ours can hold.
    const it = this.db.iterator({ gte: prefix, lt: `${prefix}\uffff` });
    try {
      for (;;) {
        const entry = await guarded('iterate', () => it.next());
        if (entry === undefined) return;
        yield [entry[0], JSON.parse(entry[1]) as T] as const;
      }
    } finally {
      await it.close();
    }
  }

  close(): Promise<void> {
    return guarded('close', () => this.db.close());
  }
}

/** Opens (creating if needed) the LevelDB store in a folder the caller owns. */
export async function openLevelStore(path: string): Promise<Store> {
  const db = new Level<string, string>(path, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  await guarded('open', () => db.open());
  return new LevelStore(db, { sync: true });
}

/** An in-memory store with the same behaviour, for tests. */
export async function openMemoryStore(): Promise<Store> {
  const db = new MemoryLevel<string, string>({ keyEncoding: 'utf8', valueEncoding: 'utf8' });
  await db.open();
  return new LevelStore(db, { sync: false });
}
