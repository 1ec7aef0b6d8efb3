/**
 * One VmSender per VM paired here as `primary`, kept in step with the pairings: a new or
 * changed pairing (peer, address, epoch, baseline, compression) replaces the VM's sender, a
 * removed one stops it. Reconciles on `refresh()` (after a pair call) and every few seconds.
 *
 * States: created → running (run) → closed (shutdown).
 */
import type { Logger } from '../../../common/log/log.ts';
import type { Clock } from '../../../common/time/clock.ts';
import { hostIdentity } from '../../../certs/identity.ts';
import type { VmJournal } from '../journal/types.ts';
import {
  createReplicationClient,
  type ReplicationClient,
} from '../transport/replication-client.ts';
import type { TlsMaterial } from '../transport/replication-server.ts';
import type { PrimaryCopyOptions } from './initial-copy-run.ts';
import { peerUri, type Pairing } from './pairing.ts';
import { VmSender, type ReplicationStatus } from './sender.ts';

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
  readonly tls: TlsMaterial | undefined;
  readonly tlsDir: string;
  readonly clock: Clock;
  readonly log: Logger;
  /** @default 2000 */
  readonly reconcileMs?: number;
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

  constructor(private readonly o: SenderPoolOptions) {}

  async run(signal: AbortSignal): Promise<void> {
    const onAbort = (): void => this.refreshNow();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal.aborted && !this.closed) {
        await this.reconcile();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.o.reconcileMs ?? 2_000);
          this.refreshNow = () => {
            clearTimeout(timer);
            resolve();
          };
          if (signal.aborted || this.closed) this.refreshNow();
        });
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Pairings changed: reconcile now. */
  refresh(): void {
    this.refreshNow();
  }

  wake(vm: string): void {
    this.running.get(vm)?.sender.wake();
  }

  status(vm: string, pairing: Pairing): ReplicationStatus {
    const r = this.running.get(vm);
    if (r) return r.sender.status;
    const noTls = this.o.tls === undefined;
    return {
      role: 'primary',
      peer: peerUri(pairing),
      state: noTls ? 'stopped' : 'idle',
      lastAckedSeq: 0,
      lastError: noTls
        ? `SS_CERT_INVALID: no TLS material (ca.pem, cert.pem, key.pem) in ${this.o.tlsDir}`
        : '',
      lastShippedAt: 0,
    };
  }

  async shutdown(): Promise<void> {
    this.closed = true;
    this.refreshNow();
    await Promise.all([...this.running.keys()].map((vm) => this.stop(vm)));
  }

  private async reconcile(): Promise<void> {
    const wanted = new Map(this.o.primaries().map((p) => [p.name, p]));
    for (const [vm, r] of this.running) {
      const w = wanted.get(vm);
      if (!w || JSON.stringify(w.pairing) !== r.key) await this.stop(vm);
    }
    if (!this.o.tls || this.closed) return;
    for (const [vm, p] of wanted) {
      if (!this.running.has(vm)) this.start(p, this.o.tls);
    }
  }

  private start(p: PrimaryVm, tls: TlsMaterial): void {
    const log = this.o.log;
    const client = createReplicationClient({
      target: p.pairing.peerAddress,
      expectedPeer: hostIdentity(p.pairing.vault, p.pairing.peerHost),
      tls,
      log,
    });
    const sender = new VmSender({
      vm: p.name,
      pairing: p.pairing,
      journal: p.journal,
      client,
      clock: this.o.clock,
      log,
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
  }
}
