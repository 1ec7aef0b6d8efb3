/**
 * Host revocation (issue #7): each vault keeps one list of revoked host credentials
 * (`v/<vault>/revoked`, rules in domain/revocation.ts) and every host of the vault holds a copy,
 * pushed as host_control.proto `set_revoked`. A host refuses on both replication ports (8084,
 * 8083) every call of a caller the list names, so a revoked host's connections fail on their
 * next call; the ticket service asks `isRevoked` before it grants a ticket.
 *
 * Flow of `host revoke`:
 *  1. the host is looked up in the vault's host records (unknown: SS_BAD_INPUT naming the flag);
 *  2. the new list is stored (one change at a time per vault, so versions never repeat) before
 *     anything is acknowledged or sent;
 *  3. the list is sent to every connected host of every server of the vault, the command id
 *     `revoked.<server>.<host>.v<version>` so a resend is applied once;
 *  4. a host that did not get it (offline, provider down) reports an older `revoked_version` in
 *     its inventory when it comes back; each such report sends the list again.
 */
import { formatIdentity, hostIdentity } from '../../certs/identity.ts';
import { SecondsiteError, badInput, isSecondsiteError } from '../../common/errors/errors.ts';
import type { RevocationView, RevokedPushView } from '../../common/api-client/types.ts';
import type { Logger } from '../../common/log/log.ts';
import type { Clock } from '../../common/time/clock.ts';
import type { ChannelHub } from '../channel/channel-hub.ts';
import { parseQualified, sameServer } from '../domain/mapping.ts';
import {
  EMPTY_REVOKED,
  hostIsBehind,
  isIdentityRevoked,
  revokeIdentity,
  type RevokedSet,
} from '../domain/revocation.ts';
import type { Vault } from '../domain/vault.ts';
import type { HostRecord, VmInventory } from '../inventory/vm-inventory.ts';
import { sendHostCommand } from '../replication/host-relay.ts';
import { keys, type Store } from '../store/store.ts';
import type { VaultService } from '../vaults/vault-service.ts';

export interface RevokedRecord extends RevokedSet {
  readonly vaultId: string;
  readonly updatedAt: number;
}

/** A push waits this long for a host's answer; a host that is slower gets it on its report. */
const PUSH_TIMEOUT_MS = 15_000;

export class RevocationService {
  /** One change at a time per vault: the read-modify-write of the list is not interleaved. */
  private readonly changing = new Map<string, Promise<unknown>>();
  /** Hosts with a push in flight (`vault/server/host`), so reports do not pile up pushes. */
  private readonly pushing = new Set<string>();

  constructor(
    private readonly d: {
      store: Store;
      clock: Clock;
      log: Logger;
      vaults: VaultService;
      vms: VmInventory;
      hub: ChannelHub;
    },
  ) {
    d.vms.onReport((h) => this.onReport(h));
  }

  /** The vault's list (empty, version 0, when nothing was revoked). */
  async list(vaultId: string): Promise<RevokedSet> {
    return (await this.d.store.get<RevokedRecord>(keys.revoked(vaultId))) ?? EMPTY_REVOKED;
  }

  /** Whether host `uri` (`secondsite://<vault>/host/<name>`) is revoked in the vault. */
  async isRevoked(vaultId: string, uri: string): Promise<boolean> {
    return isIdentityRevoked(await this.list(vaultId), uri);
  }

  /** `host revoke`: stores the host's identity in the list, then pushes the list to all hosts. */
  async revoke(vaultName: string, qualifiedHost: string): Promise<RevocationView> {
    const vault = await this.vaultNamed(vaultName);
    const q = parseQualified('host', qualifiedHost);
    const host = (await this.d.vms.hosts(vault.id)).find(
      (h) => sameServer(h.server, q.server) && h.host.toLowerCase() === q.name.toLowerCase(),
    );
    if (host === undefined) {
      throw badInput('host', `no host ${qualifiedHost} in vault ${vault.name}`, {
        host: qualifiedHost,
      });
    }
    const identity = formatIdentity(hostIdentity(vault.name, host.host.toLowerCase()));
    const { list, changed } = await this.change(vault.id, (l) => revokeIdentity(l, identity));
    this.d.log.warn(
      { vault: vault.name, host: `${host.server}/${host.host}`, version: list.version, changed },
      'host revoked',
    );
    const hosts = await this.pushToAll(vault.id, list);
    return {
      host: `${host.server}/${host.host}`,
      identity,
      changed,
      version: list.version,
      identities: list.identities,
      hosts,
    };
  }

  private async vaultNamed(name: string): Promise<Vault> {
    try {
      return await this.d.vaults.byName(name);
    } catch (e) {
      if (isSecondsiteError(e) && e.code === 'SS_NOT_FOUND') {
        throw badInput('vault', `no vault named ${name}`, { vault: name });
      }
      throw e;
    }
  }

  /** Applies `rule` to the stored list and stores the result (step 2), one change at a time. */
  private change(
    vaultId: string,
    rule: (l: RevokedSet) => { list: RevokedSet; changed: boolean },
  ): Promise<{ list: RevokedSet; changed: boolean }> {
    const before = this.changing.get(vaultId) ?? Promise.resolve();
    const next = before
      .catch(() => undefined)
      .then(async () => {
        const outcome = rule(await this.list(vaultId));
        if (outcome.changed) {
          const record: RevokedRecord = {
            vaultId,
            version: outcome.list.version,
            identities: outcome.list.identities,
            fingerprints: outcome.list.fingerprints,
            updatedAt: this.d.clock.now(),
          };
          await this.d.store.put(keys.revoked(vaultId), record);
        }
        return outcome;
      });
    this.changing.set(vaultId, next);
    void next.finally(() => {
      if (this.changing.get(vaultId) === next) this.changing.delete(vaultId);
    });
    return next;
  }

  /** Step 3: every host of the vault, in parallel; a host that is not connected is left to step 4. */
  private async pushToAll(vaultId: string, list: RevokedSet): Promise<RevokedPushView[]> {
    const hosts = await this.d.vms.hosts(vaultId);
    return Promise.all(
      hosts.map(async (h): Promise<RevokedPushView> => {
        const name = `${h.server}/${h.host}`;
        if (!h.connected) {
          return { host: name, applied: false, pending: 'not connected: sent when it reports' };
        }
        try {
          await this.push(h, list);
          return { host: name, applied: true, pending: null };
        } catch (e) {
          const why = e instanceof Error ? e.message : String(e);
          return { host: name, applied: false, pending: `${why}; sent again when it reports` };
        }
      }),
    );
  }

  private async push(h: HostRecord, list: RevokedSet): Promise<void> {
    const id = `${h.vaultId}/${h.server}/${h.host}`.toLowerCase();
    if (this.pushing.has(id)) {
      throw new SecondsiteError('SS_UNAVAILABLE', `a push to ${h.host} is already under way`);
    }
    this.pushing.add(id);
    try {
      const result = await sendHostCommand(this.d.hub, {
        vaultId: h.vaultId,
        server: h.server,
        host: h.host,
        commandId: `revoked.${h.server.toLowerCase()}.${h.host}.v${list.version}`,
        command: {
          setRevoked: {
            version: String(list.version),
            identities: [...list.identities],
            fingerprints: [...list.fingerprints],
          },
        },
        signal: AbortSignal.timeout(PUSH_TIMEOUT_MS),
        timeoutMs: PUSH_TIMEOUT_MS,
      });
      if (result.error) {
        throw new SecondsiteError(
          'SS_UNAVAILABLE',
          `host ${h.host} refused the revoked list: ${result.error.message}`,
        );
      }
      this.d.log.info({ host: h.host, version: list.version }, 'revoked list pushed');
    } finally {
      this.pushing.delete(id);
    }
  }

  /** Step 4: a connected host that reports an older list gets the current one. */
  private async onReport(h: HostRecord): Promise<void> {
    if (!h.connected) return;
    const list = await this.list(h.vaultId);
    if (!hostIsBehind(list, h.revokedVersion ?? 0)) return;
    if (this.pushing.has(`${h.vaultId}/${h.server}/${h.host}`.toLowerCase())) return;
    void this.push(h, list).catch((e: unknown) =>
      this.d.log.warn({ err: e, host: h.host }, 'revoked list push failed; retrying on a report'),
    );
  }
}
