/**
 * One VmSender per VM paired here as `primary` and not paused, kept in step with the
 * pairings: a new or changed pairing (peer, address, epoch, baseline, compression) replaces
 * the VM's sender, a removed or paused one stops it (its journal keeps recording; a resumed
 * sender ships what piled up). Reconciles on `refresh()` (after a pair call; it resolves once
 * that reconcile is done, so a pause is in effect when it resolves) and every few seconds.
 *
 * States: created → running (run) → closed (shutdown).
 */
import { SegmentMemoryPool } from '../journal/segment-reader.ts';
import type { ChannelCredentials } from '@grpc/grpc-js';
import type { Logger } from '../../../common/log/log.ts';
import type { Clock } from '../../../common/time/clock.ts';
import { hostIdentity } from '../../../certs/identity.ts';
import type { VmJournal } from '../journal/types.ts';
import {
  createReplicationClient,
  type ReplicationClient,
} from '../transport/replication-client.ts';
import type { TlsSource } from '../transport/replication-server.ts';
import type { PrimaryCopyOptions } from './initial-copy-run.ts';
import { peerUri, type Pairing } from './pairing.ts';
import { VmSender, type ReplicationStatus } from './sender.ts';
import type { HostBandwidth } from './bandwidth-limiter.ts';
import type { HelloFields } from './protocol.ts';

export interface PrimaryVm {
  readonly name: string;
  readonly pairing: Pairing;
  readonly journal: () => VmJournal | undefined;
  /** What the initial copy needs (the client is the pool's); without it the sender refuses. */
  readonly copy?: Omit<PrimaryCopyOptions, 'client'>;
}

export interface SenderPoolOptions {
  /** Every VM paired here as primary. */
  readonly primaries: () => readonly PrimaryVm[];
  /** This host's TLS material; without it nothing can be shipped. */
  readonly tls: TlsSource | undefined;
  readonly tlsDir: string;
  /** Channel credentials for a pairing with `ticketAuth` (the ticket port); absent: none. */
  readonly ticketCredentials?: (vm: string, pairing: Pairing) => ChannelCredentials | undefined;
  readonly clock: Clock;
  readonly log: Logger;
  /** @default 2000 */
  readonly reconcileMs?: number;
  /** The host's replication bandwidth cap; every chunk a sender sends waits for it. */
  readonly bandwidth?: HostBandwidth;
  /** The Hello senders open their streams with. @default LOCAL_HELLO */
  readonly local?: HelloFields;
}

interface Running {
  readonly key: string;
  readonly sender: VmSender;
  readonly client: ReplicationClient;
  readonly abort: AbortController;
  readonly done: Promise<void>;
}

export class SenderPool {
  private readonly running = new Map<string, Running>();
  private refreshNow: () => void = () => undefined;
  private closed = false;
  private looping = false;
  /** refresh() callers waiting for the next reconcile to finish. */
  private waiting: Array<() => void> = [];
  /** The status of each VM's last stopped sender, by `peer epoch`: shown while paused. */
  private readonly last = new Map<string, { key: string; status: ReplicationStatus }>();

  /** Kept segment memory shared by this host's senders (segment-reader.ts). */
  private readonly memory = new SegmentMemoryPool();

  constructor(private readonly o: SenderPoolOptions) {}

  async run(signal: AbortSignal): Promise<void> {
    const onAbort = (): void => this.refreshNow();
    signal.addEventListener('abort', onAbort, { once: true });
    this.looping = true;
    try {
      while (!signal.aborted && !this.closed) {
        const served = this.waiting.splice(0);
        await this.reconcile().finally(() => served.forEach((r) => r()));
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.o.reconcileMs ?? 2_000);
          this.refreshNow = () => {
            clearTimeout(timer);
            resolve();
          };
          if (signal.aborted || this.closed || this.waiting.length > 0) this.refreshNow();
        });
      }
    } finally {
      this.looping = false;
      signal.removeEventListener('abort', onAbort);
      this.waiting.splice(0).forEach((r) => r());
    }
  }

  /** Pairings changed: reconcile now; resolves once that reconcile is done. */
  refresh(): Promise<void> {
    if (!this.looping || this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.waiting.push(resolve);
      this.refreshNow();
    });
  }

  wake(vm: string): void {
    this.running.get(vm)?.sender.wake();
  }

  status(vm: string, pairing: Pairing): ReplicationStatus {
    const r = this.running.get(vm);
    const before = this.last.get(vm);
    const last = before?.key === lastKey(pairing) ? before.status : undefined;
    if (r) {
      const s = r.sender.status;
      // A sender started after a resume knows nothing until it connects.
      return s.lastAckedSeq === 0 && last
        ? { ...s, lastAckedSeq: last.lastAckedSeq, lastShippedAt: last.lastShippedAt }
        : s;
    }
    const noTls = this.o.tls === undefined;
    return {
      role: 'primary',
      peer: peerUri(pairing),
      state: pairing.paused ? 'paused' : noTls ? 'stopped' : 'idle',
      lastAckedSeq: last?.lastAckedSeq ?? 0,
      lastError: noTls
        ? `SS_CERT_INVALID: no TLS material (ca.pem, cert.pem, key.pem) in ${this.o.tlsDir}`
        : '',
      lastShippedAt: last?.lastShippedAt ?? 0,
    };
  }

  async shutdown(): Promise<void> {
    this.closed = true;
    this.refreshNow();
    await Promise.all([...this.running.keys()].map((vm) => this.stop(vm)));
  }

  private async reconcile(): Promise<void> {
    const wanted = new Map(
      this.o
        .primaries()
        .filter((p) => !p.pairing.paused)
        .map((p) => [p.name, p]),
    );
    for (const [vm, r] of this.running) {
      const w = wanted.get(vm);
      if (!w || JSON.stringify(w.pairing) !== r.key) await this.stop(vm);
    }
    if (!this.o.tls || this.closed) return;
    for (const [vm, p] of wanted) {
      if (!this.running.has(vm)) this.start(p, this.o.tls);
    }
  }

  private start(p: PrimaryVm, tls: TlsSource): void {
    const log = this.o.log;
    const credentials = p.pairing.ticketAuth
      ? this.o.ticketCredentials?.(p.name, p.pairing)
      : undefined;
    const client = createReplicationClient({
      target: p.pairing.peerAddress,
      expectedPeer: hostIdentity(p.pairing.vault, p.pairing.peerHost),
      tls,
      ...(credentials ? { credentials } : {}),
      ...(this.o.bandwidth ? { pace: this.o.bandwidth.pacer(p.name) } : {}),
      ...(this.o.local ? { local: this.o.local } : {}),
      log,
    });
    const sender = new VmSender({
      vm: p.name,
      pairing: p.pairing,
      journal: p.journal,
      client,
      clock: this.o.clock,
      log,
      memory: this.memory,
      ...(p.copy ? { copy: { ...p.copy, client } } : {}),
    });
    const abort = new AbortController();
    const done = sender.run(abort.signal).catch((e: unknown) => {
      log.error({ err: e, vm: p.name }, 'sender ended with an error');
    });
    this.running.set(p.name, { key: JSON.stringify(p.pairing), sender, client, abort, done });
  }

  private async stop(vm: string): Promise<void> {
    const r = this.running.get(vm);
    if (!r) return;
    this.running.delete(vm);
    r.abort.abort();
    await r.done;
    r.client.close();
    const pairing = JSON.parse(r.key) as Pairing;
    this.last.set(vm, { key: lastKey(pairing), status: r.sender.status });
  }
}

function lastKey(p: Pairing): string {
  return `${peerUri(p)} ${p.epoch}`;
}
