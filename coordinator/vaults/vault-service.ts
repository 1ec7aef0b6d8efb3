/** Vaults (R1): create by unique name, list, look up. The only writer of vault records. */
import { SecondsiteError, badInput } from '../../common/errors/errors.ts';
import type { Clock } from '../../common/time/clock.ts';
import { newVault, vaultNameSchema, type Vault } from '../domain/vault.ts';
import { newId } from '../ids.ts';
import { collect, keys, type Store } from '../store/store.ts';

export class VaultService {
  /** Creations run one at a time so two requests for one name cannot both pass the check. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  create(name: string): Promise<Vault> {
    const run = this.queue.then(() => this.createNow(name));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async createNow(name: string): Promise<Vault> {
    const parsed = vaultNameSchema.safeParse(name);
    if (!parsed.success) throw badInput('name', parsed.error.issues[0]?.message ?? 'invalid');
    if ((await this.store.get<string>(keys.vaultName(name))) !== undefined) {
      throw new SecondsiteError('SS_CONFLICT', `a vault named ${name} already exists`, {
        vault: name,
      });
    }
    let id = newId('v');
    while ((await this.store.get(keys.vault(id))) !== undefined) id = newId('v');
    const vault = newVault({ id, name, now: this.clock.now() });
    await this.store.batch([
      { type: 'put', key: keys.vault(id), value: vault },
      { type: 'put', key: keys.vaultName(name), value: id },
    ]);
    return vault;
  }

  async list(): Promise<Vault[]> {
    const vaults = await collect<Vault>(this.store, keys.vaultPrefix);
    return vaults.sort((a, b) => a.name.localeCompare(b.name));
  }

  async byName(name: string): Promise<Vault> {
    const id = await this.store.get<string>(keys.vaultName(name));
    const vault = id === undefined ? undefined : await this.store.get<Vault>(keys.vault(id));
    if (vault === undefined) {
      throw new SecondsiteError('SS_NOT_FOUND', `no vault named ${name}`, { vault: name });
    }
    return vault;
  }

  async byId(id: string): Promise<Vault | undefined> {
    return this.store.get<Vault>(keys.vault(id));
  }
}
