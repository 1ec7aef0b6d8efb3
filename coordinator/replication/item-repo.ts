/**
 * Replicated items in the store, one record per VM name in the vault
 * (`v/<vault>/item/<vm>`). Every change goes through `update`, which runs one change per item
 * at a time so a job step and a host report never overwrite each other's fields.
 */
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { ItemRecord } from '../domain/protection.ts';
import { collect, type Store } from '../store/store.ts';

const itemKey = (vaultId: string, vm: string): string => `v/${vaultId}/item/${vm}`;
const itemPrefix = (vaultId: string): string => `v/${vaultId}/item/`;

export class ItemRepo {
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(private readonly store: Store) {}

  get(vaultId: string, vm: string): Promise<ItemRecord | undefined> {
    return this.store.get<ItemRecord>(itemKey(vaultId, vm));
  }

  async require(vaultId: string, vm: string): Promise<ItemRecord> {
    const item = await this.get(vaultId, vm);
    if (item === undefined) {
      throw new SecondsiteError('SS_NOT_FOUND', `${vm} is not a replicated item of this vault`, {
        vm,
      });
    }
    return item;
  }

  async list(vaultId: string): Promise<ItemRecord[]> {
    const all = await collect<ItemRecord>(this.store, itemPrefix(vaultId));
    return all.sort((a, b) => (a.vm < b.vm ? -1 : a.vm > b.vm ? 1 : 0));
  }

  /** Stores a new item (the caller checked that none holds the name, under `update`). */
  put(item: ItemRecord): Promise<void> {
    return this.store.put(itemKey(item.vaultId, item.vm), item);
  }

  /**
   * Reads, changes and saves one item, one change per item at a time. `change` returns the
   * new record, or the same object for "no change" (nothing is written).
   */
  update(
    vaultId: string,
    vm: string,
    change: (
      item: ItemRecord | undefined,
    ) => ItemRecord | undefined | Promise<ItemRecord | undefined>,
  ): Promise<ItemRecord | undefined> {
    const key = itemKey(vaultId, vm);
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.then(async () => {
      const before = await this.store.get<ItemRecord>(key);
      const after = await change(before);
      if (after !== undefined && after !== before) await this.store.put(key, after);
      return after;
    });
    const tail = run.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return run;
  }
}
