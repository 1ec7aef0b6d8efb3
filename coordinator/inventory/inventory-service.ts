/**
 * The vault's inventory: registered servers and their synced clouds (R3, R5, R7). The only
 * writer of server and cloud records. Liveness comes from the channel hub (in memory).
 */
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { Clock } from '../../common/time/clock.ts';
import {
  identityNameOf,
  serverState,
  type CloudInventory,
  type CloudRecord,
  type ServerRecord,
  type ServerState,
  type SiteInventory,
} from '../domain/server.ts';
import { pairingColumns, type AssociationRecord } from '../policies/policy-records.ts';
import { collect, keys, type Store } from '../store/store.ts';

/** What the channel hub knows about a server's connection. */
export interface Liveness {
  liveness(vaultId: string, identityName: string): { open: boolean; lastHeartbeatAt?: number };
  readonly heartbeatMs: number;
}

export interface ServerView {
  readonly name: string;
  readonly state: ServerState;
  readonly version: string;
  readonly clouds: readonly string[];
}

export interface CloudView {
  readonly server: string;
  readonly name: string;
  readonly hostGroups: readonly string[];
  readonly synced: boolean;
  readonly policy: string | null;
  readonly pairedWith: string | null;
}

export class InventoryService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private liveness: Liveness | undefined = undefined,
  ) {}

  setLiveness(l: Liveness): void {
    this.liveness = l;
  }

  getServer(vaultId: string, name: string): Promise<ServerRecord | undefined> {
    return this.store.get<ServerRecord>(keys.server(vaultId, name));
  }

  async requireServer(vaultId: string, name: string): Promise<ServerRecord> {
    const s = await this.getServer(vaultId, name);
    if (s === undefined) {
      throw new SecondsiteError('SS_NOT_FOUND', `no server named ${name} in this vault`, {
        server: name,
      });
    }
    return s;
  }

  /** Adds or replaces a server (a re-registration replaces the previous identity's record). */
  async putServer(a: {
    vaultId: string;
    name: string;
    registrationId: string;
    version: string;
    inventory: SiteInventory;
    clientCertFingerprint: string;
  }): Promise<ServerRecord> {
    const existing = await this.getServer(a.vaultId, a.name);
    if (existing?.registrationId === a.registrationId) return existing;
    const record: ServerRecord = {
      vaultId: a.vaultId,
      name: a.name,
      identityName: identityNameOf(a.name),
      registrationId: a.registrationId,
      registeredAt: new Date(this.clock.now()).toISOString(),
      version: a.version,
      clientCertFingerprint: a.clientCertFingerprint,
      inventory: a.inventory,
    };
    await this.store.put(keys.server(a.vaultId, a.name), record);
    return record;
  }

  async reportInventory(
    vaultId: string,
    name: string,
    version: string,
    inventory: SiteInventory,
  ): Promise<void> {
    const s = await this.requireServer(vaultId, name);
    await this.store.put(keys.server(vaultId, name), { ...s, version, inventory });
  }

  async saveCloud(vaultId: string, server: string, cloud: CloudInventory): Promise<CloudRecord> {
    const record: CloudRecord = {
      vaultId,
      server,
      name: cloud.name,
      hostGroups: [...cloud.hostGroups],
      logicalNetworks: [...cloud.logicalNetworks],
      vmNetworks: [...cloud.vmNetworks],
      syncedAt: new Date(this.clock.now()).toISOString(),
    };
    await this.store.put(keys.cloud(vaultId, server, cloud.name), record);
    return record;
  }

  async listServers(vaultId: string): Promise<ServerView[]> {
    const servers = await collect<ServerRecord>(this.store, keys.serverPrefix(vaultId));
    const now = this.clock.now();
    return servers
      .map((s) => {
        const live = this.liveness?.liveness(vaultId, s.identityName) ?? { open: false };
        return {
          name: s.name,
          state: serverState({
            channelOpen: live.open,
            lastHeartbeatAt: live.lastHeartbeatAt,
            heartbeatMs: this.liveness?.heartbeatMs ?? 1,
            now,
          }),
          version: s.version,
          clouds: s.inventory.clouds.map((c) => c.name),
        };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Every cloud servers reported; host groups appear once the cloud is synced (R5), policy and
   * partner once the cloud is associated (R12).
   */
  async listClouds(vaultId: string): Promise<CloudView[]> {
    const servers = await collect<ServerRecord>(this.store, keys.serverPrefix(vaultId));
    const synced = await collect<CloudRecord>(this.store, keys.cloudPrefix(vaultId));
    const pairs = await collect<AssociationRecord>(this.store, keys.associationPrefix(vaultId));
    const out: CloudView[] = [];
    for (const s of servers) {
      const names = new Set(s.inventory.clouds.map((c) => c.name));
      for (const c of synced.filter((x) => x.server.toLowerCase() === s.name.toLowerCase())) {
        names.add(c.name);
      }
      for (const name of [...names].sort()) {
        const rec = synced.find(
          (x) => x.server.toLowerCase() === s.name.toLowerCase() && x.name === name,
        );
        out.push({
          server: s.name,
          name,
          hostGroups: rec?.hostGroups ?? [],
          synced: rec !== undefined,
          ...pairingColumns(pairs, { server: s.name, name }),
        });
      }
    }
    return out.sort((a, b) => a.server.localeCompare(b.server) || a.name.localeCompare(b.name));
  }
}
