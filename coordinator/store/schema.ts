/**
 * The store's layout version. A new coordinator upgrades an older layout in steps (one
 * function per version) before it serves anything; a layout written by a newer coordinator is
 * refused rather than misread.
 */
import { SecondsiteError } from '../../common/errors/errors.ts';
import { keys, type Store } from './store.ts';

/** Bump when the key tree in store.ts changes, and add the upgrade from the previous one. */
export const CURRENT_SCHEMA_VERSION = 1;

/** upgrades[n] turns a version-n layout into version n+1. */
export type Upgrade = (store: Store) => Promise<void>;

export async function upgradeSchema(
  store: Store,
  upgrades: Readonly<Record<number, Upgrade>> = {},
  target = CURRENT_SCHEMA_VERSION,
): Promise<{ from: number; to: number }> {
  const stored = await store.get<number>(keys.schemaVersion);
  if (stored === undefined) {
    // A fresh store: nothing to upgrade; written so later versions know where they start.
    await store.put(keys.schemaVersion, target);
    return { from: target, to: target };
  }
  if (stored > target) {
    throw new SecondsiteError(
      'SS_STORE_VERSION',
      `the data folder was written by a newer secondsite (layout ${stored}, this one knows ${target})`,
      { stored, supported: target },
    );
  }
  for (let v = stored; v < target; v++) {
    const upgrade = upgrades[v];
    if (upgrade === undefined) {
      throw new SecondsiteError('SS_STORE_VERSION', `no upgrade from layout ${v} to ${v + 1}`, {
        stored,
        supported: target,
      });
    }
    await upgrade(store);
    // One version at a time, so a crash mid-way resumes at the step it was in.
    await store.put(keys.schemaVersion, v + 1);
  }
  return { from: stored, to: target };
}
