/**
 * The enrolled host's control stream to its provider (host_control.proto, Connect): mutual
 * TLS with the host certificate; hello with the full inventory and where peers reach this
 * host's replication ports, then the inventory again whenever it changes (replication status
 * included), and provider commands applied once per id (host-commands.ts).
 *
 * States: connecting → connected → backoff → connecting … ; any state → closed (shutdown).
 * Reconnects use capped exponential backoff with jitter (0.5 s doubling to 5 s: a provider
 * restart is the common case and should not leave hosts unseen for long).
 *
 * The VM manager has no change events, so the inventory is compared with the last one sent
 * every CHECK_MS and after each command: cheap (a few VMs; a replica's points come from its
 * open store's index) and it catches every kind of change, including the local `host vm`
 * commands and the senders' progress. One comparison runs at a time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { isSecondsiteError, SecondsiteError } from '../../../common/errors/errors.ts';
import type { Service } from '../../../common/lifecycle/lifecycle.ts';
import type { Logger } from '../../../common/log/log.ts';
import { errorFromDetail } from '../../../common/wire/agent-channel-messages.ts';
import { fromGrpcError } from '../../../common/wire/grpc-errors.ts';
import {
  HOST_CONTROL_PROTOCOL,
  type HostFrame,
  type ProviderFrame,
} from '../../../common/wire/host-control-messages.ts';
import { backoffDelay } from '../replication/backoff.ts';
import type { RotatingTls } from '../transport/rotating-tls.ts';
import type { HostEndpoint } from '../host-agent.ts';
import type { ReplicationOps } from '../replication/replication-ops.ts';
import type { VmManager } from '../vm/vm-manager.ts';
import { HostCommandLog } from './command-log.ts';
import { hostCommands, type HostCommands } from './host-commands.ts';
import type { HostIdentity } from './host-identity.ts';
import type { HostTickets } from './host-tickets.ts';
import { hostInventory } from './host-inventory.ts';
import { createProviderClient } from './provider-client.ts';

export type LinkState = 'connecting' | 'connected' | 'backoff' | 'closed';

const CHECK_MS = 500;
const BACKOFF = Object.freeze({ initialMs: 500, maxMs: 5_000, multiplier: 2, jitter: 0.5 });

export interface ProviderLink extends Service {
  state(): LinkState;
}

type Stream = ClientDuplexStream<HostFrame, ProviderFrame>;

export async function createProviderLink(a: {
  dataDir: string;
  identity: HostIdentity;
  vms: VmManager;
  /** The replication operations (host-agent.ts); without them only create_vm is served. */
  ops?: ReplicationOps;
  /** Where peers reach this host (told in the hello); unknown when absent. */
  endpoint?: () => Promise<HostEndpoint>;
  /** The ticket service client (host-agent.ts); its requests ride this stream. */
  tickets?: HostTickets;
  version: string;
  log: Logger;
  /** The host's credentials, renewed in place (cert-renewer.ts); default: the identity's. */
  tls?: RotatingTls;
  /**
   * The live provider CA pins and what installs a pushed trust bundle (host-credentials.ts);
   * default: the enrolment pin, and set_trust_bundle is refused.
   */
  trust?: { pins: () => readonly string[]; apply: (bundlePem: string) => Promise<void> };
}): Promise<ProviderLink> {
  const log = a.log.child({ component: 'provider-link', provider: a.identity.info.provider });
  const commands = hostCommands(
    a.vms,
    await HostCommandLog.open(a.dataDir),
    a.ops && { ops: a.ops, vault: a.identity.info.vault },
    a.trust?.apply,
  );
  const deps: ServeDeps = {
    commands,
    vms: a.vms,
    ops: a.ops,
    endpoint: a.endpoint ?? (async () => ({ address: '', certPort: 0, ticketPort: 0 })),
    tickets: a.tickets,
    version: a.version,
    log,
  };
  const client = createProviderClient({
    target: a.identity.info.provider,
    rootCaPem: a.identity.caPem,
    provider: {
      vault: a.identity.info.vault,
      intermediateFingerprint: a.trust?.pins ?? a.identity.info.providerCaFingerprint,
    },
    own: a.tls ?? { keyPem: a.identity.keyPem, certPem: a.identity.certPem },
  });
  let state: LinkState = 'connecting';
  const stop = new AbortController();
  let current: Stream | undefined;
  const set = (s: LinkState): void => {
    if (state !== s) log.info({ state: s }, 'provider link state');
    state = s;
  };

  async function run(signal: AbortSignal): Promise<void> {
    const aborted = AbortSignal.any([signal, stop.signal]);
    let attempt = 0;
    while (!aborted.aborted) {
      set('connecting');
      const stream = client.connect();
      current = stream;
      const reached = await serve(stream, deps, () => set('connected'));
      current = undefined;
      if (reached) attempt = 0;
      if (aborted.aborted) break;
      set('backoff');
      await sleep(backoffDelay(attempt++, Math.random, BACKOFF), undefined, {
        signal: aborted,
      }).catch(() => undefined);
    }
    set('closed');
  }

  return {
    state: () => state,
    run,
    async shutdown() {
      stop.abort();
      current?.cancel();
      client.close();
    },
  };
}

interface ServeDeps {
  readonly commands: HostCommands;
  readonly vms: VmManager;
  readonly ops: ReplicationOps | undefined;
  readonly endpoint: () => Promise<HostEndpoint>;
  readonly tickets: HostTickets | undefined;
  readonly version: string;
  readonly log: Logger;
}

/** Serves one stream until it ends; resolves true when the provider welcomed us. */
function serve(stream: Stream, d: ServeDeps, onWelcome: () => void): Promise<boolean> {
  let welcomed = false;
  let ended = false;
  let last = '';
  // A command can finish after the stream ended: its answer is dropped (the provider resends
  // the command on the next stream and gets the recorded answer).
  const send = (f: HostFrame): void => {
    if (!ended) stream.write(f);
  };
  let checking: Promise<void> | undefined;
  const check = async (): Promise<void> => {
    const inventory = await hostInventory(d.vms, d.ops);
    const text = JSON.stringify(inventory);
    if (text === last) return;
    last = text;
    send({ inventory });
  };
  /** One comparison at a time; a request during one is served by the next timer tick. */
  const sendIfChanged = (): void => {
    if (checking || !welcomed) return;
    checking = check()
      .catch((e: unknown) => d.log.warn({ err: e }, 'cannot read the inventory'))
      .finally(() => (checking = undefined));
  };
  void (async () => {
    const [inventory, at] = await Promise.all([hostInventory(d.vms, d.ops), d.endpoint()]);
    last = JSON.stringify(inventory);
    send({
      hello: {
        protocolMin: HOST_CONTROL_PROTOCOL.min,
        protocolMax: HOST_CONTROL_PROTOCOL.max,
        version: d.version,
        inventory,
        address: at.address,
        certPort: at.certPort,
        ticketPort: at.ticketPort,
      },
    });
  })().catch((e: unknown) => {
    d.log.warn({ err: e }, 'cannot say hello to the provider');
    stream.cancel();
  });
  const timer = setInterval(sendIfChanged, CHECK_MS);
  stream.on('data', (f: ProviderFrame) => {
    if (f.body === 'welcome' && 'welcome' in f) {
      welcomed = true;
      onWelcome();
      sendIfChanged();
      if (d.tickets) {
        const tickets = d.tickets;
        tickets.attach((ticketService) => send({ ticketService }));
        // Until the service confirms the key (it may not know this host yet: the provider's
        // report of it can arrive after this request), retried while the stream lasts.
        const register = (attempt: number): void => {
          tickets.registerKey().catch((e: unknown) => {
            d.log.warn({ err: e }, 'cannot register the ticket key yet');
            if (!ended)
              setTimeout(() => register(attempt + 1), Math.min(5_000, 250 * 2 ** attempt)).unref();
          });
        };
        register(0);
      }
    } else if (f.body === 'command' && 'command' in f && welcomed) {
      const commandId = f.command.commandId;
      void d.commands.run(f.command).then((commandResult) => {
        const error = commandResult.error;
        if (error)
          d.log.warn(
            { command: commandId, code: error.code, msg: error.message },
            'command failed',
          );
        else d.log.info({ command: commandId }, 'command applied');
        send({ commandResult });
        sendIfChanged();
      });
    } else if (f.body === 'ticketService' && 'ticketService' in f && welcomed) {
      d.tickets?.onReply(f.ticketService);
    } else if (f.body === 'error' && 'error' in f) {
      const e = errorFromDetail(f.error);
      d.log.warn({ code: e.code, msg: e.message }, 'the provider refused the control stream');
    }
  });
  return new Promise((resolve) => {
    const done = (e?: unknown): void => {
      if (ended) return;
      ended = true;
      clearInterval(timer);
      d.tickets?.detach();
      stream.end();
      if (e !== undefined) {
        const err = isSecondsiteError(e)
          ? e
          : fromGrpcError(e as Parameters<typeof fromGrpcError>[0], 'the provider');
        d.log.warn({ code: err.code, why: err.message }, 'control stream ended');
      }
      resolve(welcomed);
    };
    // `on`, not `once`: a late error after the end must not go unhandled.
    stream.on('error', (e) => done(e));
    stream.once('end', () =>
      done(new SecondsiteError('SS_UNAVAILABLE', 'the provider ended the stream')),
    );
  });
}
