/**
 * The primary side of replication for one VM: ships its sealed journal segments, in order and
 * coalesced, to the paired replica host, and deletes each segment once its ack (= durably
 * applied there) came back.
 *
 * The loop, numbered:
 *  1. wait for a journal (the VM runs and is protected) that is journaling;
 *  2. while the pairing's baseline is 'initial-copy-required': run the initial copy
 *     (initial-copy-run.ts; state `initial-copy`, progress in `copy`), which sets 'copied';
 *     while it is 'resync-required': run a resync (agent/host/sync/resync-source.ts; state
 *     `resync`: hashes compared, only differing chunks sent; also out of a journal overflow),
 *     which sets 'copied'; without `copy` options, refuse instead — state `stopped`;
 *  3. open the ship stream (Hello → Welcome, Resume with the replica's lastApplied);
 *  4. resume: sealed segments ≤ lastApplied are already applied there, so markShipped them; if
 *     the next sealed segment is not lastApplied + 1 the journal cannot continue the replica
 *     (a gap: initial copy or resync needed) — state `stopped`;
 *  5. ship every shippable segment > lastApplied (sealed, or with its SEAL durable and its
 *     seal still finishing: the cut wakes the sender before the raw disks catch up), one at a
 *     time, markShipped after each ack;
 *     when none is left, idle until woken (a cut) or the poll interval passes.
 * Any error: `retryDecision` says stop (state `stopped`, or `incompatible` for protocol
 * versions), resume (reopen at once) or retry (state `backoff`, capped jittered delay).
 *
 * States: idle | connecting | initial-copy | resync | shipping | backoff | stopped |
 * incompatible; `paused` is reported by the pool for a paused pairing (no sender runs).
 */
import { SecondsiteError, isSecondsiteError } from '../../../common/errors/errors.ts';
import type { ErrorCode } from '../../../common/errors/catalogue.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { Clock } from '../../../common/time/clock.ts';
import { loadShippableSegment } from '../journal/segment-coalesce.ts';
import type { SegmentMemoryPool } from '../journal/segment-reader.ts';
import { SegmentTail } from '../journal/segment-tail.ts';
import type { LiveSegment, VmJournal } from '../journal/types.ts';
import type { ReplicationClient, ShipStream } from '../transport/replication-client.ts';
import type { SyncProgress } from '../sync/types.ts';
import { backoffDelay, retryDecision } from './backoff.ts';
import type { LiveBatch } from './live-frames.ts';
import { runResyncSource, type ResyncJournal } from '../sync/resync-source.ts';
import { runPrimaryInitialCopy, type PrimaryCopyOptions } from './initial-copy-run.ts';
import { peerUri, type Pairing } from './pairing.ts';

/** File bytes of a live segment read per batch. */
const LIVE_READ_BYTES = 8 * 1024 * 1024;
/**
 * How often a live segment is looked at for new records while the VM writes (the cut wakes
 * the sender at once): the lag of the replica's copy behind the journal.
 */
const LIVE_POLL_MS = 20;
/** A live segment's lag is logged (debug) at most this often. */
const LIVE_LOG_MS = 5_000;

export type SenderState =
  | 'idle'
  | 'connecting'
  | 'initial-copy'
  | 'resync'
  | 'shipping'
  | 'backoff'
  | 'stopped'
  | 'incompatible'
  | 'paused';

export interface ReplicationStatus {
  readonly role: 'primary' | 'replica';
  /** The peer's identity URI. */
  readonly peer: string;
  readonly state: SenderState;
  /** Seq of the newest segment the peer acknowledged (primary) or applied (replica). */
  readonly lastAckedSeq: number;
  /** "SS_CODE: message" of the last failure, '' after a success. */
  readonly lastError: string;
  /** When a segment was last acknowledged (ms since the epoch), 0 for never. */
  readonly lastShippedAt: number;
  /** Primary only: progress of the initial copy (durable on the replica), once one ran. */
  readonly copy?: SyncProgress;
  /**
   * Primary only: the last resync run by this sender (an onboarding or an overflow's way out):
   * bytes whose hashes were compared with the replica's, and bytes of differing chunks sent
   * (all-zero chunks travel as zero extents and are not counted).
   */
  readonly resync?: { readonly bytesCompared: number; readonly bytesSent: number };
  /**
   * Replica only: segments applied here since the agent started, by the channel they came on
   * (8084 certificates, 8083 tickets).
   */
  readonly segmentsVia?: { readonly certificate: number; readonly ticket: number };
  /**
   * Replica only: block bytes of the cycles' chunks received since this agent started, raw
   * and as they travelled (compressed chunks at their compressed size); initial copies and
   * resyncs are not counted (receiver.ts).
   */
  readonly received?: { readonly rawBytes: number; readonly wireBytes: number };
}

export interface SenderOptions {
  readonly vm: string;
  readonly pairing: Pairing;
  /** The VM's open journal, or undefined while it is stopped or unprotected. */
  readonly journal: () => VmJournal | undefined;
  readonly client: ReplicationClient;
  readonly clock: Clock;
  readonly log: Logger;
  /** [0, 1) for jitter. @default Math.random */
  readonly random?: () => number;
  /** How often an idle sender looks for sealed segments without being woken. @default 250 */
  readonly pollMs?: number;
  /** Runs the initial copy when the baseline asks for one; without it the sender refuses. */
  readonly copy?: PrimaryCopyOptions;
  /** The host's kept segment memory (segment-reader.ts); fresh memory per segment without. */
  readonly memory?: SegmentMemoryPool;
}

function resyncable(j: VmJournal): j is VmJournal & ResyncJournal {
  return typeof (j as Partial<ResyncJournal>).resetAfterResync === 'function';
}

export class VmSender {
  private status_: ReplicationStatus;
  private wakeUp: () => void = () => undefined;
  /** A wake arrived while the sender was not sleeping (it was reading or sending). */
  private woken = false;
  private attempt = 0;
  private stream: ShipStream | undefined;
  private readonly log: Logger;
  /** This sender finished the initial copy (its pairing still says otherwise until replaced). */
  private copied = false;

  constructor(private readonly o: SenderOptions) {
    this.log = o.log.child({ component: 'sender', vm: o.vm, peer: peerUri(o.pairing) });
    this.status_ = {
      role: 'primary',
      peer: peerUri(o.pairing),
      state: 'idle',
      lastAckedSeq: 0,
      lastError: '',
      lastShippedAt: 0,
    };
  }

  get status(): ReplicationStatus {
    return this.status_;
  }

  /** Something may have been sealed: look now instead of at the next poll. */
  wake(): void {
    this.woken = true;
    this.wakeUp();
  }

  async run(signal: AbortSignal): Promise<void> {
    const onAbort = (): void => {
      this.stream?.cancel();
      this.wakeUp();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal.aborted) {
        try {
          await this.cycle(signal);
        } catch (e) {
          if (signal.aborted) break;
          await this.onError(e, signal);
        }
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.stream?.cancel();
    }
  }

  /** Steps 1–5 of the file comment; returns when idle without a stream, throws on failure. */
  private async cycle(signal: AbortSignal): Promise<void> {
    const journal = this.o.journal();
    if (journal && this.o.pairing.baseline === 'resync-required' && !this.copied) {
      // Before the journal check: a resync is also the way out of an overflowed journal.
      await this.resync(journal, signal);
      if (signal.aborted) return;
    }
    if (!journal || journal.state !== 'journaling') {
      if (journal) this.fail('SS_RESYNC_REQUIRED', 'the journal overflowed; a resync is needed');
      this.set({ state: journal ? 'stopped' : 'idle' });
      return this.sleep(signal, 1_000);
    }
    if (this.o.pairing.baseline === 'initial-copy-required' && !this.copied) {
      if (!this.o.copy) {
        throw new SecondsiteError(
          'SS_RESYNC_REQUIRED',
          `VM ${this.o.vm} needs an initial copy to its replica before deltas can be shipped`,
        );
      }
      await this.initialCopy(this.o.copy, journal, signal);
      if (signal.aborted) return;
    }
    this.set({ state: 'connecting' });
    const stream = await this.o.client.openShipStream({
      vmId: this.o.vm,
      epoch: this.o.pairing.epoch,
    });
    this.stream = stream;
    try {
      this.attempt = 0;
      let last = stream.lastApplied;
      this.set({ lastAckedSeq: last, lastError: '' });
      await this.resume(journal, last);
      while (!signal.aborted && stream.state === 'open' && this.o.journal() === journal) {
        const unshipped = journal.shippableSegments().filter((s) => s.seq > last);
        if (unshipped.length === 0) {
          // Step 6: nothing sealed is left; the segment the journal writes now travels live.
          const live = stream.live ? journal.liveSegment?.(last + 1) : undefined;
          if (live) {
            await this.shipLive(stream, journal, live, signal);
            last = live.seq;
            await this.acked(journal, live.seq);
            continue;
          }
          this.set({ state: 'idle' });
          await this.sleep(signal, this.o.pollMs ?? 250);
          continue;
        }
        this.set({ state: 'shipping' });
        for (const s of unshipped) {
          if (s.seq !== last + 1) this.gap(last, s.seq);
          const t0 = performance.now();
          // Borrowed for this segment only: its frames are all serialized once the ack is in.
          const memory = this.o.memory?.borrow();
          let t1 = t0;
          let acked = false;
          try {
            const seg = await loadShippableSegment(s, memory);
            t1 = performance.now();
            await stream.ship(
              { vmId: this.o.vm, seq: s.seq, point: seg.point, extents: seg.extents },
              { compress: this.o.pairing.compression },
            );
            acked = true;
          } finally {
            if (memory) this.o.memory?.giveBack(memory, acked);
          }
          const t2 = performance.now();
          last = s.seq;
          this.log.debug(
            {
              seq: s.seq,
              bytes: s.bytes,
              loadMs: Math.round(t1 - t0),
              shipMs: Math.round(t2 - t1),
            },
            'segment shipped',
          );
          await this.acked(journal, s.seq);
        }
      }
    } finally {
      this.stream = undefined;
      stream.cancel();
    }
  }

  /** Acknowledged = durably applied there: report it at once, then delete it here. */
  private async acked(journal: VmJournal, seq: number): Promise<void> {
    this.set({ lastAckedSeq: seq, lastShippedAt: this.o.clock.now(), lastError: '' });
    await journal.markShipped(seq);
  }

  /**
   * Step 6: ships segment `live.seq` while the journal writes it (FEATURE_LIVE_SEGMENTS): its
   * records as they are appended, then the rest and its point once the cut made the SEAL
   * durable here. Resolves when the peer acknowledged it; if an overflow drops the segment
   * meanwhile, the stream fails (SS_CANCELLED) and the replica discards what it held.
   */
  private async shipLive(
    stream: ShipStream,
    journal: VmJournal,
    live: LiveSegment,
    signal: AbortSignal,
  ): Promise<void> {
    const tail = SegmentTail.open(live.path, live.seq);
    const timing = { sealedAt: 0, bytes: 0, tailBytes: 0 };
    try {
      await stream.shipLive(
        { vmId: this.o.vm, seq: live.seq },
        this.liveBatches(tail, journal, signal, timing),
        { compress: this.o.pairing.compression },
      );
    } finally {
      tail.close();
    }
    this.log.debug(
      {
        seq: live.seq,
        bytes: timing.bytes,
        live: true,
        // What was still to send when the cut made the segment shippable: the live lag.
        tailBytes: timing.tailBytes,
        ackMs: Math.round(performance.now() - timing.sealedAt),
      },
      'segment shipped',
    );
  }

  /** The live segment's records in batches as the journal appends them; the last has the point. */
  private async *liveBatches(
    tail: SegmentTail,
    journal: VmJournal,
    signal: AbortSignal,
    timing: { sealedAt: number; bytes: number; tailBytes: number },
  ): AsyncGenerator<LiveBatch> {
    const seq = tail.seq;
    let sealRead = false;
    let loggedAt = performance.now();
    for (;;) {
      if (signal.aborted) throw new SecondsiteError('SS_CANCELLED', 'the sender is stopping');
      // Every poll asks the cheap question first: shippable is looked up only once the segment
      // stopped being live (its SEAL is durable, or an overflow dropped it).
      const live = journal.liveSegment?.(seq);
      const done = live ? undefined : journal.shippableSegments().find((s) => s.seq === seq);
      if (!done && !live) {
        throw new SecondsiteError('SS_CANCELLED', `segment ${seq} is no longer journaled here`, {
          seq,
        });
      }
      let read = 0;
      if (!sealRead) {
        const limit = done ? tail.size() : live!.written;
        if (performance.now() - loggedAt > LIVE_LOG_MS) {
          loggedAt = performance.now();
          // How far the peer's copy trails the journal: bytes written here, not yet sent.
          this.log.debug({ seq, sent: tail.position, lagBytes: limit - tail.position }, 'live');
        }
        const r = tail.read(limit, LIVE_READ_BYTES);
        read = r.bytes;
        timing.bytes += r.bytes;
        if (done) timing.tailBytes += r.bytes;
        sealRead = r.seal !== undefined;
        if (r.extents.length > 0) {
          this.set({ state: 'shipping' });
          yield { extents: r.extents };
        }
      }
      if (sealRead && done) {
        timing.sealedAt = performance.now();
        yield { extents: [], point: done.point };
        return;
      }
      if (done && read === 0) {
        throw new SecondsiteError('SS_IO', `segment ${seq} ends without its seal`, { seq });
      }
      if (read === 0 || sealRead) {
        this.set({ state: 'idle' });
        await this.sleep(signal, LIVE_POLL_MS);
      }
    }
  }

  /** Step 2: one attempt of the initial copy; throws on a break (backoff, then resume). */
  private async initialCopy(
    copy: PrimaryCopyOptions,
    journal: VmJournal,
    signal: AbortSignal,
  ): Promise<void> {
    this.set({ state: 'initial-copy' });
    const baseSeq = await runPrimaryInitialCopy(copy, {
      vm: this.o.vm,
      pairing: this.o.pairing,
      journal,
      log: this.log,
      signal,
      onProgress: (p) => this.set({ state: 'initial-copy', copy: p }),
    });
    this.copied = true;
    this.attempt = 0;
    this.set({ lastAckedSeq: baseSeq, lastShippedAt: this.o.clock.now(), lastError: '' });
  }

  /** Step 2, resync: one attempt; throws on a break (backoff, then it resumes at its cursor). */
  private async resync(journal: VmJournal, signal: AbortSignal): Promise<void> {
    const copy = this.o.copy;
    if (!copy || !resyncable(journal)) {
      throw new SecondsiteError(
        'SS_RESYNC_REQUIRED',
        `VM ${this.o.vm} needs a resync, which this sender cannot run`,
      );
    }
    this.set({ state: 'resync' });
    const peer = copy.client.resyncPeer({
      vmId: this.o.vm,
      epoch: this.o.pairing.epoch,
      compress: this.o.pairing.compression,
    });
    const overflowed = journal.state === 'resync-required';
    let stats: Awaited<ReturnType<typeof runResyncSource>>;
    try {
      stats = await runResyncSource({
        dir: copy.stateDir,
        journal,
        diskSizes: copy.diskSizes,
        // 'dirty' narrows to the overflow bitmap; a journaling source compares everything.
        scope: 'dirty',
        rule: overflowed ? 'journal-overflow' : 'requested-resync',
        peer,
        signal,
        log: this.log,
      });
    } catch (e) {
      peer.cancel();
      throw e;
    }
    this.set({ resync: { bytesCompared: stats.bytesHashed, bytesSent: stats.bytesSent } });
    if (stats.paused) {
      peer.cancel();
      return;
    }
    await copy.setBaseline('copied');
    this.copied = true;
    this.attempt = 0;
    this.set({ lastAckedSeq: stats.baseSeq, lastShippedAt: this.o.clock.now(), lastError: '' });
  }

  /** Step 4: what the replica already has is shipped; the rest must follow on directly. */
  private async resume(journal: VmJournal, last: number): Promise<void> {
    // Shippable, not only sealed: a segment the replica applied while its seal was still
    // finishing here must be marked too, or the finished seal would keep it for good.
    const sealed = journal.shippableSegments();
    const applied = sealed.filter((s) => s.seq <= last).at(-1);
    if (applied) await journal.markShipped(applied.seq);
    const next = sealed.find((s) => s.seq > last);
    if (next && next.seq !== last + 1) this.gap(last, next.seq);
  }

  private gap(last: number, next: number): never {
    const why =
      last === 0
        ? `the journal starts at segment ${next}, not 1: the replica needs an initial copy`
        : `the replica is at segment ${last} but the journal continues at ${next}: a resync is needed`;
    throw new SecondsiteError('SS_RESYNC_REQUIRED', why, { lastApplied: last, next });
  }

  private async onError(e: unknown, signal: AbortSignal): Promise<void> {
    const err = isSecondsiteError(e)
      ? e
      : new SecondsiteError('SS_INTERNAL', e instanceof Error ? e.message : String(e));
    const decision = retryDecision(err.code);
    this.fail(err.code, err.message);
    if (decision === 'stop') {
      const state = err.code === 'SS_PROTOCOL_INCOMPATIBLE' ? 'incompatible' : 'stopped';
      this.log.error({ code: err.code, err: err.message }, 'replication stopped');
      this.set({ state });
      // Stays stopped until the pairing changes (a new sender) or the agent restarts.
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
      return;
    }
    if (decision === 'resume') return;
    const delay = backoffDelay(this.attempt++, this.o.random ?? Math.random);
    this.log.warn({ code: err.code, err: err.message, delay }, 'replication failed; retrying');
    this.set({ state: 'backoff' });
    await this.sleep(signal, delay);
  }

  private fail(code: ErrorCode, message: string): void {
    this.set({ lastError: `${code}: ${message}` });
  }

  private set(change: Partial<ReplicationStatus>): void {
    this.status_ = { ...this.status_, ...change };
  }

  /** Waits `ms`, or until woken; a wake that came while awake ends the next wait at once. */
  private sleep(signal: AbortSignal, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal.aborted || this.woken) {
        this.woken = false;
        return resolve();
      }
      const done = (): void => {
        clearTimeout(timer);
        this.woken = false;
        this.wakeUp = () => undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }
}
