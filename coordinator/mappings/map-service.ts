/**
 * Network maps (R8) and storage maps (R9) of a vault: the only writer of map records. The rules
 * are the domain's (mapping.ts addMap/removeMap) applied to the fabrics of the vault's servers
 * as their providers last reported them; each map is stored under its source, so a source has
 * one map (addMap refuses a second).
 *
 * Listeners registered with onChange hear of every stored change, after it is written: R8's
 * "changing a mapping reconnects replicas" is theirs to do.
 */
import type { MapInput, MapKind, ResourceMap } from '../domain/mapping.ts';
import { addMap, parseQualified, removeMap, sameQualified } from '../domain/mapping.ts';
import type { ServerRecord } from '../domain/server.ts';
import { serverFabricOf } from '../inventory/fabric.ts';
import { Serial } from '../policies/serial.ts';
import { collect, keys, type Store } from '../store/store.ts';

export type MapChange = {
  readonly vaultId: string;
  readonly kind: MapKind;
  readonly change: 'created' | 'deleted';
  readonly map: ResourceMap;
};

export class MapService {
  private readonly serial = new Serial();
  private readonly listeners = new Set<(c: MapChange) => void>();

  constructor(private readonly store: Store) {}

  /** Every map of a kind, by source server (case-insensitively) then source name. */
  list(vaultId: string, kind: MapKind): Promise<ResourceMap[]> {
    return collect<ResourceMap>(this.store, keys.mapPrefix(vaultId, kind));
  }

  /** Adds source → target; the same map again is returned unchanged. */
  create(vaultId: string, kind: MapKind, input: MapInput): Promise<ResourceMap> {
    return this.serial.run(vaultId, async () => {
      const existing = await this.list(vaultId, kind);
      const servers = await collect<ServerRecord>(this.store, keys.serverPrefix(vaultId));
      const next = addMap(kind, input, existing, servers.map(serverFabricOf));
      const added = next.find((m) => !existing.includes(m));
      if (added === undefined) {
        // addMap returned the list unchanged: this exact map exists already.
        const source = parseQualified('source', input.source);
        const same = existing.find((m) => sameQualified(m.source, source));
        if (same === undefined) throw new Error('addMap neither added nor found the map');
        return same;
      }
      await this.store.put(keys.map(vaultId, kind, added.source.server, added.source.name), added);
      this.emit({ vaultId, kind, change: 'created', map: added });
      return added;
    });
  }

  /** Removes the map source → target; refuses (SS_NOT_FOUND) when there is none. */
  delete(vaultId: string, kind: MapKind, input: MapInput): Promise<ResourceMap> {
    return this.serial.run(vaultId, async () => {
      const existing = await this.list(vaultId, kind);
      const next = removeMap(kind, input, existing);
      const removed = existing.find((m) => !next.includes(m));
      if (removed === undefined) throw new Error('removeMap removed nothing');
      await this.store.del(keys.map(vaultId, kind, removed.source.server, removed.source.name));
      this.emit({ vaultId, kind, change: 'deleted', map: removed });
      return removed;
    });
  }

  /** Calls `listener` after each stored change; returns the function that stops it. */
  onChange(listener: (c: MapChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The change is stored whatever a listener does; a throwing listener cannot undo it. */
  private emit(c: MapChange): void {
    for (const l of this.listeners) {
      try {
        l(c);
      } catch {
        // A listener's failure is its own to report; the caller's request succeeded.
      }
    }
  }
}
