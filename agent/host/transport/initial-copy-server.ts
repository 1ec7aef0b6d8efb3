/**
 * The server side of InitialCopy (replication.proto; ARCHITECTURE.md "Initial replication"):
 * frames pass the dispatch table (sync-wire.ts) and their size checks, chunks are decoded and
 * CRC-checked by the chunk codec, then written by the VM's InitialCopyTarget, which fsyncs and
 * moves its durable watermark every `flushEveryBytes`. A CopyProgress goes out only after such
 * a flush, so "bytes before it are durable" holds for every progress the source sees, and a
 * broken copy resumes at the last one.
 *
 * A chunk whose CRC fails ends the stream with SS_CHECKSUM_MISMATCH: nothing past the last
 * watermark counts, and the source resumes there (retrying is the source's choice).
 * Reading is pull-based, as in ship-server.ts: HTTP/2 flow control holds the source back while
 * the disks are written.
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { stepOf } from '../replication/ship-dispatch.ts';
import { decodeChunk } from '../replication/chunk-codec.ts';
import { createSegmentDigest, type SegmentDigest } from '../replication/segment-digest.ts';
import type { InitialCopyTarget } from '../sync/initial-copy-target.ts';
import type { SyncProgress } from '../sync/types.ts';
import { acceptHello, welcomeFor, type ShipDeps, type StreamContext } from './ship-server.ts';
import {
  COPY_STEPS,
  COPY_TRANSITIONS,
  assertCallerCurrent,
  checkCopyStart,
  nextSyncState,
  type CopyFrameMsg,
  type CopyReplyMsg,
  type CopyStep,
  type SyncState,
} from './sync-wire.ts';

/** What the copy stream drives (agent/host/sync/initial-copy-target.ts). */
export type CopyTarget = Pick<
  InitialCopyTarget,
  'begin' | 'write' | 'progress' | 'pending' | 'finish'
>;

/** Supplied by the host agent: the replica-side engine of a VM, or a typed refusal. */
export type CopyTargetFactory = (ctx: StreamContext) => CopyTarget | Promise<CopyTarget>;

export interface SyncDeps extends ShipDeps {
  /** VMs with a copy or resync stream open: one at a time per VM. */
  readonly busy: Set<string>;
}

/**
 * Steps 1–2 shared by the copy and resync streams: accept the Hello (auth, pairing, epoch,
 * version), claim the VM (one copy or resync stream per VM at a time) and say where the claim
 * is held, then answer Welcome. `claim` runs before anything is written, so a failed write
 * still leaves the claim to be released when the stream ends.
 */
export async function openSyncStream(
  hello: Parameters<typeof acceptHello>[0],
  deps: SyncDeps,
  stream: 'copy' | 'resync',
  call: { write(frame: { welcome: ReturnType<typeof welcomeFor> }): unknown },
  claim: (vmId: string) => void,
): Promise<StreamContext> {
  const { agreement, vmId, epoch } = await acceptHello(hello, deps);
  if (deps.busy.has(vmId)) {
    throw new SecondsiteError('SS_CONFLICT', `VM ${vmId} already has a copy or resync stream`);
  }
  deps.busy.add(vmId);
  claim(vmId);
  const log = deps.log.child({ vm: vmId, peer: deps.caller.uri, stream });
  call.write({ welcome: welcomeFor(deps.local, agreement) });
  return { caller: deps.caller, vmId, epoch, agreement, log };
}

type Stream = ServerDuplexStream<CopyFrameMsg, CopyReplyMsg>;

class CopySession {
  state: SyncState = 'await-hello';
  private ctx: StreamContext | undefined;
  private target: CopyTarget | undefined;
  /** Set when this attempt began at 0/0: the copy's digest is then checkable. */
  private digest: SegmentDigest | undefined;
  private sentDone = -1;
  /** The VM this stream holds in `deps.busy`, released when the stream ends. */
  claimed: string | undefined;

  constructor(
    private readonly call: Stream,
    private readonly deps: SyncDeps,
    private readonly factory: CopyTargetFactory,
  ) {}

  private expect(): { ctx: StreamContext; target: CopyTarget } {
    if (!this.ctx || !this.target) throw new SecondsiteError('SS_INTERNAL', 'no copy begun');
    return { ctx: this.ctx, target: this.target };
  }

  private sendProgress(p: SyncProgress, done: boolean, at?: { disk: number; offset: number }) {
    this.sentDone = p.bytesDone;
    this.call.write({
      progress: {
        disk: at?.disk ?? 0,
        offset: at?.offset ?? 0,
        bytesDone: p.bytesDone,
        bytesTotal: p.bytesTotal,
        done,
      },
    });
  }

  readonly handlers: Record<CopyStep, (f: CopyFrameMsg) => Promise<void> | void> = {
    // Steps 1–2.
    hello: async (f) => {
      this.ctx = await openSyncStream(
        'hello' in f ? f.hello : null,
        this.deps,
        'copy',
        this.call,
        (vmId) => (this.claimed = vmId),
      );
    },
    // Steps 3–4: where to begin (the watermark of an earlier attempt with this copy id).
    start: async (f) => {
      const ctx = this.ctx!;
      assertCallerCurrent(ctx.caller, this.deps.clock, this.deps.revoked);
      const start = checkCopyStart('start' in f ? f.start : undefined, ctx.vmId);
      this.target = await this.factory(ctx);
      const from = this.target.begin(start);
      if (from.disk === 0 && from.offset === 0) {
        this.digest = createSegmentDigest(0, ctx.agreement);
      }
      ctx.log.info({ copyId: start.copyId, baseSeq: start.baseSeq, from }, 'copy stream begins');
      this.sendProgress(this.target.progress(), false, from);
    },
    // Step 5, and step 6 after each flush the target made.
    chunk: async (f) => {
      const { ctx, target } = this.expect();
      assertCallerCurrent(ctx.caller, this.deps.clock, this.deps.revoked);
      if (!('chunk' in f) || !f.chunk) throw new SecondsiteError('SS_PROTOCOL', 'empty chunk');
      const extents = decodeChunk(f.chunk, ctx.agreement);
      this.digest?.addChunk(extents, f.chunk.digest);
      await target.write(extents);
      const p = target.progress();
      if (p.bytesDone !== this.sentDone) this.sendProgress(p, false, target.pending()?.cursor);
    },
    // Steps 7–8.
    end: async (f) => {
      const { ctx, target } = this.expect();
      const sent = 'end' in f && f.end ? f.end.digest : Buffer.alloc(0);
      if (this.digest && sent.length > 0 && !this.digest.digest().equals(sent)) {
        throw new SecondsiteError('SS_CHECKSUM_MISMATCH', 'initial copy digest does not match');
      }
      const total = target.progress().bytesTotal;
      const { baseSeq } = await target.finish();
      ctx.log.info({ baseSeq }, 'copy stream done; the replica expects the next segment');
      this.sendProgress({ bytesDone: total, bytesTotal: total }, true);
    },
  };
}

/** Serves one InitialCopy stream to its end; throws what should end it with an error. */
export async function serveInitialCopy(
  call: Stream,
  deps: SyncDeps,
  factory: CopyTargetFactory,
): Promise<void> {
  const session = new CopySession(call, deps, factory);
  const frames = call.iterator({ destroyOnReturn: false }) as AsyncIterable<CopyFrameMsg>;
  try {
    for await (const frame of frames) {
      const step = stepOf(frame, COPY_STEPS);
      session.state = nextSyncState(COPY_TRANSITIONS, session.state, step);
      await session.handlers[step as CopyStep](frame);
    }
  } finally {
    if (session.claimed !== undefined) deps.busy.delete(session.claimed);
  }
}
