/**
 * The provider's view of its hosts: one control session per host (a newer connection replaces
 * an older one), each host's last reported VMs and replication endpoint, the VMs the site file
 * declares but the host lacks, which it is told to create (host_control.proto, step 4), and
 * the coordinator's commands relayed to a host (host-relay.ts).
 *
 * Host states: connected (a session is open) | disconnected (none; the last inventory is
 * kept). Every change of a host's inventory or state is handed to `report`, which relays it
 * to the coordinator, each disk carrying the storage classification the site file declares.
 */
import type { Logger } from '../../../common/log/log.ts';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import type {
  HostCommand,
  HostCommandResult,
  HostInventoryMsg,
  HostInventoryReport,
  ProviderFrame,
} from '../../../common/wire/host-control-messages.ts';
import type { SiteFile } from '../site/site-schema.ts';
import { HostRelay } from './host-relay.ts';
import { classified, declaredVms, hostPlacement } from './site-vms.ts';

export interface HostSession {
  readonly host: string;
  send(frame: ProviderFrame): void;
  /** Ends the stream: the host reconnects if it still wants to. */
  end(): void;
}

type HostState = 'connected' | 'disconnected';

/** Where peers reach a host's replication ports, from its hello. */
export interface HostEndpointInfo {
  readonly address: string;
  readonly certPort: number;
  readonly ticketPort: number;
}

interface HostEntry {
  state: HostState;
  inventory: HostInventoryMsg;
  endpoint: HostEndpointInfo | undefined;
  session: HostSession | undefined;
  /** Create commands sent on the current session and not answered yet. */
  readonly inFlight: Set<string>;
}

export interface HostRegistryOptions {
  readonly site: () => SiteFile;
  readonly report: (r: HostInventoryReport) => void;
  readonly log: Logger;
  /** How long a relayed command waits for its host to connect. @default 60 s (host-relay.ts) */
  readonly relayWaitMs?: number;
  /** How long a connected host may take to answer one. @default 5 min (host-relay.ts) */
  readonly relayAnswerMs?: number;
}

export class HostRegistry {
  private readonly hosts = new Map<string, HostEntry>();
  private readonly relays: HostRelay;

  constructor(private readonly opts: HostRegistryOptions) {
    this.relays = new HostRelay({
      session: (host) => this.hosts.get(host)?.session,
      log: opts.log,
      ...(opts.relayWaitMs === undefined ? {} : { waitMs: opts.relayWaitMs }),
      ...(opts.relayAnswerMs === undefined ? {} : { answerMs: opts.relayAnswerMs }),
    });
  }

  /** The trust bundle command every host is given (provider-ca.ts); none until set. */
  private trust: HostCommand | undefined;

  /**
   * The provider's trust bundle changed (a CA rotation): every connected host is told now,
   * and every host that connects later at its hello. The id names the bundle, so a host
   * applies each bundle once (its command log) and a resend is answered from the log.
   */
  setTrustBundle(command: HostCommand): void {
    this.trust = command;
    for (const entry of this.hosts.values()) entry.session?.send({ command });
  }

  /** Step 1: a host said hello (with where peers reach it, when it said). */
  attach(session: HostSession, inventory: HostInventoryMsg, endpoint?: HostEndpointInfo): void {
    const old = this.hosts.get(session.host);
    if (old?.session !== undefined && old.session !== session) old.session.end();
    this.hosts.set(session.host, {
      state: 'connected',
      inventory,
      endpoint: endpoint ?? old?.endpoint,
      session,
      inFlight: new Set(),
    });
    this.opts.log.info({ host: session.host, vms: inventory.vms.length }, 'host connected');
    if (this.trust !== undefined) session.send({ command: this.trust });
    this.changed(session.host);
    this.relays.attached(session.host, session);
  }

  /**
   * Sends a coordinator command to `host` (its commandId already the agent command's id) and
   * resolves with the host's answer; waits for a disconnected host (host-relay.ts). A host the
   * site file does not declare is SS_NOT_FOUND.
   */
  relay(host: string, command: HostCommand): Promise<HostCommandResult> {
    if (hostPlacement(this.opts.site(), host) === undefined) {
      return Promise.reject(
        new SecondsiteError('SS_NOT_FOUND', `this site has no host named ${host}`, { host }),
      );
    }
    return this.relays.send(host, command);
  }

  /** Step 3: the host's VMs changed. */
  onInventory(session: HostSession, inventory: HostInventoryMsg): void {
    const entry = this.current(session);
    if (entry === undefined) return;
    entry.inventory = inventory;
    this.changed(session.host);
  }

  /** Step 4: the host answered a command. */
  onResult(session: HostSession, result: HostCommandResult): void {
    const entry = this.current(session);
    if (entry === undefined) return;
    if (this.relays.answered(session.host, result)) return;
    if (result.error) {
      // Kept in flight: resent only on the next connection, not in a loop on this one.
      this.opts.log.warn(
        {
          host: session.host,
          command: result.commandId,
          code: result.error.code,
          msg: result.error.message,
        },
        'host refused a command',
      );
      return;
    }
    entry.inFlight.delete(result.commandId);
  }

  detach(session: HostSession): void {
    const entry = this.current(session);
    if (entry === undefined) return;
    entry.state = 'disconnected';
    entry.session = undefined;
    this.opts.log.info({ host: session.host }, 'host disconnected');
    this.changed(session.host);
    this.relays.detached(session.host, session);
  }

  /** The provider stops: relays in flight fail with SS_UNAVAILABLE. */
  close(): void {
    this.relays.close();
  }

  /** Every known host's report: sent again after the coordinator channel reconnects. */
  reports(): HostInventoryReport[] {
    return [...this.hosts.keys()].sort().flatMap((h) => {
      const r = this.reportOf(h);
      return r === undefined ? [] : [r];
    });
  }

  state(host: string): HostState | undefined {
    return this.hosts.get(host)?.state;
  }

  private current(session: HostSession): HostEntry | undefined {
    const entry = this.hosts.get(session.host);
    return entry?.session === session ? entry : undefined;
  }

  private changed(host: string): void {
    this.reconcile(host);
    const r = this.reportOf(host);
    if (r !== undefined) this.opts.report(r);
  }

  /** Asks the host to create the declared VMs it lacks. */
  private reconcile(host: string): void {
    const entry = this.hosts.get(host);
    if (entry?.session === undefined) return;
    const have = new Set(entry.inventory.vms.map((v) => v.name));
    for (const vm of declaredVms(this.opts.site(), host)) {
      if (have.has(vm.create.name) || entry.inFlight.has(vm.commandId)) continue;
      entry.inFlight.add(vm.commandId);
      this.opts.log.info(
        { host, vm: vm.create.name, command: vm.commandId },
        'creating a declared VM',
      );
      entry.session.send({ command: { commandId: vm.commandId, createVm: vm.create } });
    }
  }

  private reportOf(host: string): HostInventoryReport | undefined {
    const entry = this.hosts.get(host);
    if (entry === undefined) return undefined;
    const site = this.opts.site();
    const placement = hostPlacement(site, host);
    return {
      host,
      hostGroup: placement?.hostGroup ?? '',
      cloud: placement?.cloud ?? '',
      connected: entry.state === 'connected',
      inventory: classified(site, host, entry.inventory),
      address: entry.endpoint?.address ?? '',
      certPort: entry.endpoint?.certPort ?? 0,
      ticketPort: entry.endpoint?.ticketPort ?? 0,
    };
  }
}
