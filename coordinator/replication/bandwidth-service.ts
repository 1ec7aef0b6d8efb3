/**
 * Replication bandwidth control (R22): each host's cap (with time windows) and each item's
 * priority, stored here and pushed to the source host as host_control.proto set_bandwidth,
 * with the priorities of the items whose source it is.
 *
 * Durable and idempotent: the setting is stored first (`v/<vault>/bandwidth/<server>/<host>`)
 * with a revision that every change raises; the command id is `bandwidth.<host>.r<revision>`,
 * so a resend is applied once. A push that fails (host unreachable) is retried whenever the
 * host reports an inventory whose setting differs from the stored one.
 */
import { SecondsiteError, badInput } from '../../common/errors/errors.ts';
import type {
  BandwidthRequest,
  BandwidthView,
  ItemView,
  ReplicationPriority,
} from '../../common/api-client/types.ts';
import type { Logger } from '../../common/log/log.ts';
import type { Clock } from '../../common/time/clock.ts';
import {
  MB,
  PRIORITIES,
  describeSetting,
  formatWindow,
  parseRate,
  parseWindow,
  settingFromMsg,
  settingToMsg,
  type BandwidthSetting,
} from '../../common/wire/bandwidth-setting.ts';
import type { ChannelHub } from '../channel/channel-hub.ts';
import { parseQualified, sameServer } from '../domain/mapping.ts';
import type { HostRecord, VmInventory } from '../inventory/vm-inventory.ts';
import { keys, type Store } from '../store/store.ts';
import type { VaultService } from '../vaults/vault-service.ts';
import { sendHostCommand } from './host-relay.ts';
import type { ProtectionService } from './protection-service.ts';

export interface BandwidthRecord {
  readonly vaultId: string;
  readonly server: string;
  readonly host: string;
  /** Without priorities (those come from the items at push time). */
  readonly setting: Omit<BandwidthSetting, 'priorities'>;
  readonly revision: number;
  readonly updatedAt: number;
}

const PUSH_TIMEOUT_MS = 15_000;

export class BandwidthService {
  private readonly pushing = new Set<string>();

  constructor(
    private readonly d: {
      store: Store;
      clock: Clock;
      log: Logger;
      vaults: VaultService;
      vms: VmInventory;
      hub: ChannelHub;
      protection: ProtectionService;
    },
  ) {
    d.vms.onReport((h) => this.onReport(h));
  }

  /** `host set-bandwidth`: stores the cap and pushes it to the host. */
  async set(vaultName: string, req: BandwidthRequest): Promise<BandwidthView> {
    const vault = await this.d.vaults.byName(vaultName);
    const setting = parseRequest(req);
    const q = parseQualified('host', req.host);
    const host = (await this.d.vms.hosts(vault.id)).find(
      (h) => sameServer(h.server, q.server) && h.host === q.name,
    );
    if (host === undefined) {
      throw new SecondsiteError('SS_NOT_FOUND', `no host ${req.host} in this vault`, {
        host: req.host,
      });
    }
    const key = keys.bandwidth(vault.id, host.server, host.host);
    const before = await this.d.store.get<BandwidthRecord>(key);
    const record: BandwidthRecord = {
      vaultId: vault.id,
      server: host.server,
      host: host.host,
      setting,
      revision: (before?.revision ?? 0) + 1,
      updatedAt: this.d.clock.now(),
    };
    await this.d.store.put(key, record);
    return this.pushAndView(record);
  }

  /** `replication set-priority`: stores it on each item and pushes it to their source hosts. */
  async setPriority(
    vaultName: string,
    priority: string,
    vms: readonly string[],
  ): Promise<{ items: ItemView[]; hosts: BandwidthView[] }> {
    const vault = await this.d.vaults.byName(vaultName);
    if (!(PRIORITIES as readonly string[]).includes(priority)) {
      throw badInput('priority', `"${priority}" is not high, normal or low`);
    }
    if (vms.length === 0) throw badInput('vms', 'name at least one VM');
    const items = this.d.protection.items;
    for (const vm of vms) await items.require(vault.id, vm);
    const hosts = new Map<string, { server: string; host: string }>();
    for (const vm of vms) {
      const item = await items.update(vault.id, vm, (i) =>
        i === undefined
          ? i
          : { ...i, priority: priority as ReplicationPriority, updatedAt: this.d.clock.now() },
      );
      if (item)
        hosts.set(`${item.sourceServer}/${item.sourceHost}`.toLowerCase(), {
          server: item.sourceServer,
          host: item.sourceHost,
        });
    }
    const views: BandwidthView[] = [];
    for (const h of hosts.values()) {
      const key = keys.bandwidth(vault.id, h.server, h.host);
      const before = await this.d.store.get<BandwidthRecord>(key);
      const record: BandwidthRecord = {
        vaultId: vault.id,
        server: h.server,
        host: h.host,
        setting: before?.setting ?? { limit: null, windows: [] },
        revision: (before?.revision ?? 0) + 1,
        updatedAt: this.d.clock.now(),
      };
      await this.d.store.put(key, record);
      views.push(await this.pushAndView(record));
    }
    return {
      items: await Promise.all(vms.map((vm) => this.d.protection.show(vaultName, vm))),
      hosts: views,
    };
  }

  /** The full setting for a host: its cap and its source items' priorities. */
  async desired(record: BandwidthRecord): Promise<BandwidthSetting> {
    const priorities: Record<string, ReplicationPriority> = {};
    for (const i of await this.d.protection.items.list(record.vaultId)) {
      if (
        i.state !== 'disabled' &&
        sameServer(i.sourceServer, record.server) &&
        i.sourceHost === record.host &&
        i.priority !== undefined &&
        i.priority !== 'normal'
      ) {
        priorities[i.vm] = i.priority;
      }
    }
    return { ...record.setting, priorities };
  }

  private async pushAndView(record: BandwidthRecord): Promise<BandwidthView> {
    const setting = await this.desired(record);
    let pending: string | null = null;
    try {
      await this.push(record, setting);
    } catch (e) {
      pending =
        `${e instanceof Error ? e.message : String(e)}; ` +
        'stored: it is sent again when the host reports';
    }
    return viewOf(record, setting, pending === null, pending);
  }

  private async push(record: BandwidthRecord, setting: BandwidthSetting): Promise<void> {
    const result = await sendHostCommand(this.d.hub, {
      vaultId: record.vaultId,
      server: record.server,
      host: record.host,
      commandId: `bandwidth.${record.host}.r${record.revision}`,
      command: { setBandwidth: settingToMsg(setting) },
      signal: AbortSignal.timeout(PUSH_TIMEOUT_MS),
      timeoutMs: PUSH_TIMEOUT_MS,
    });
    if (result.error) {
      throw new SecondsiteError(
        'SS_UNAVAILABLE',
        `host ${record.host} refused the bandwidth setting: ${result.error.message}`,
      );
    }
    this.d.log.info(
      { host: record.host, bandwidth: describeSetting(setting) },
      'bandwidth setting pushed',
    );
  }

  /** A host reported: push the stored setting again if it reports another one. */
  private async onReport(h: HostRecord): Promise<void> {
    if (!h.connected) return;
    const record = await this.d.store.get<BandwidthRecord>(
      keys.bandwidth(h.vaultId, h.server, h.host),
    );
    if (record === undefined) return;
    const setting = await this.desired(record);
    if (h.bandwidth && sameSetting(h.bandwidth.setting, setting)) return;
    const id = `${h.vaultId}/${h.server}/${h.host}`.toLowerCase();
    if (this.pushing.has(id)) return;
    this.pushing.add(id);
    void this.push(record, setting)
      .catch((e: unknown) =>
        this.d.log.warn({ err: e, host: h.host }, 'bandwidth push failed; retrying on a report'),
      )
      .finally(() => this.pushing.delete(id));
  }
}

function sameSetting(reported: Parameters<typeof settingFromMsg>[0], want: BandwidthSetting) {
  try {
    return (
      JSON.stringify(settingToMsg(settingFromMsg(reported))) === JSON.stringify(settingToMsg(want))
    );
  } catch {
    return false;
  }
}

/** The CLI's flags: exactly one of limit and unlimited; windows as text. */
export function parseRequest(req: BandwidthRequest): Omit<BandwidthSetting, 'priorities'> {
  const hasLimit = req.limit !== undefined && req.limit !== null && req.limit !== '';
  if (hasLimit && req.unlimited) throw badInput('limit', 'give --limit or --unlimited, not both');
  if (!hasLimit && !req.unlimited) throw badInput('limit', 'give --limit MB/s or --unlimited');
  const limit = hasLimit ? parseRate(String(req.limit), 'limit') : null;
  const windows = (req.windows ?? []).map((w) => parseWindow(w, 'window'));
  return { limit, windows };
}

function viewOf(
  r: BandwidthRecord,
  s: BandwidthSetting,
  applied: boolean,
  pending: string | null,
): BandwidthView {
  return {
    host: `${r.server}/${r.host}`,
    limitMBps: s.limit === null ? null : s.limit / MB,
    windows: s.windows.map(formatWindow),
    description: describeSetting(s),
    priorities: s.priorities,
    applied,
    pending,
  };
}
