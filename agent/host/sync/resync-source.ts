/**
 * Resync, source side (R18): hash the VM's disks chunk by chunk, ask the replica which chunks
 * differ, send only those; then the journal's segments after the base point make the replica
 * exact. Transport-agnostic: the replica is a ResyncPeer (types.ts).
 *
 * Order, and why it is exact:
 *   1. resetAfterResync(): from now on every write is journaled again; it returns the dirty
 *      bitmap as it stood at that instant (journal overflow, rule journal-overflow).
 *   2. Take the ranges to compare: those dirty ranges widened to whole chunks, or every disk.
 *      They are saved (step 4) because step 1 deleted the bitmap.
 *   3. Cut a base point; baseSeq = its segment. Writes before it are on the journal's disks.
 *   4. Save { id, ranges, baseSeq } in `<dir>/resync-source.json` (a restart resumes the same
 *      resync: same id, ranges and base; the replica's cursor says where).
 *   5. Per batch: read and hash through journal.disk(i), get the diff, send the differing
 *      chunks (all-zero ones as zero ranges). A chunk read after the cut may hold later
 *      writes; those are in segments > baseSeq as well, so they land again in order.
 *   6. peer.finish(baseSeq); the source drops segments <= baseSeq (their writes were compared)
 *      and ships baseSeq + 1 onwards as usual. The replica is exact at baseSeq + 1.
 * Batches are pipelined (runResyncSource): up to `window` are hashed and their diffs asked
 * ahead, while applies stay one at a time in grid order.
 * Pausing: abort `signal`; the run stops between batches and resolves { paused: true }.
 *
 */
import { randomUUID } from 'node:crypto';
import { setImmediate } from 'node:timers/promises';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { isAllZero } from '../../../common/bytes/all-zero.ts';
import type { Logger } from '../../../common/log/log.ts';
import type { VmJournal } from '../journal/types.ts';
import {
  DEFAULT_CHUNK_BYTES,
  alignToChunks,
  batches,
  cursorAfter,
  fromDirtyMap,
  rangesFrom,
  validChunkBytes,
  wholeDisks,
  type DiskRange,
} from './chunk-grid.ts';
import { hashRange, type HashAlgorithm, type HashedRange, type ReadFn } from './chunk-hash.ts';
import { differingIndexes } from './hash-diff.ts';
import type { ResyncScope } from './resync-rules.ts';
import { readJsonFile, removeJsonFile, writeJsonFile } from './sync-state-file.ts';
import type { Extent, ResyncPeer, ResyncStats } from './types.ts';

export type ResyncJournal = Pick<
  VmJournal,
  'disk' | 'cut' | 'state' | 'dirtyRanges' | 'markShipped'
> & { resetAfterResync(): Promise<Map<number, Array<[number, number]>>> };

export interface ResyncSourceOptions {
  /** The VM's sync folder on the source (holds resync-source.json). */
  readonly dir: string;
  readonly journal: ResyncJournal;
  readonly diskSizes: readonly number[];
  readonly scope: ResyncScope;
  /** The decision rule that asked for this resync (logged). */
  readonly rule: string;
  readonly peer: ResyncPeer;
  /** @default 1 MiB */
  readonly chunkBytes?: number;
  /** @default 'blake3' (needs FEATURE_BLAKE3 agreed; else 'sha256') */
  readonly algorithm?: HashAlgorithm;
  /** Chunks per RangeHashes; sizes each reused buffer (16 × 1 MiB). @default 16 */
  readonly batchChunks?: number;
  /**
   * Batches in flight: hashed, their diff asked or their chunks being applied. Memory is
   * `window × batchChunks × chunkBytes`. @default 4, fewer (not under 2) past 128 MiB
   */
  readonly window?: number;
  readonly signal?: AbortSignal;
  readonly log: Logger;
}

interface SavedResync {
  readonly version: 1;
  readonly id: string;
  readonly scope: ResyncScope;
  readonly baseSeq: number;
  readonly chunkBytes: number;
  readonly ranges: DiskRange[];
}

const STATE = 'resync-source.json';
const DEFAULT_BATCH_CHUNKS = 16;
/**
 * One batch at a time left both sides mostly idle (each waited on the other's hashing and on
 * two round trips per batch); a few in flight keep the source and the replica hashing at once.
 * The buffers are capped: fresh memory is slow to touch, and 8 × 64 MiB measured slower than
 * 2 × 64 MiB (bench `resync`).
 */
const DEFAULT_WINDOW = 4;
const WINDOW_BYTES = 128 * 2 ** 20;

type Diff = Awaited<ReturnType<ResyncPeer['diff']>>;

export async function runResyncSource(
  o: ResyncSourceOptions,
): Promise<ResyncStats & { paused: boolean }> {
  const saved = await prepare(o);
  const { chunkBytes, baseSeq } = saved; // a resumed resync keeps its own chunk size
  const algorithm = o.algorithm ?? 'blake3';
  const log = o.log.child({ component: 'resync-source', resync: saved.id });
  log.info(
    { rule: o.rule, scope: saved.scope, baseSeq, chunkBytes, algorithm },
    'resync: source begins',
  );
  const { cursor } = await o.peer.begin({ id: saved.id, algorithm, chunkBytes });
  const batchChunks = o.batchChunks ?? DEFAULT_BATCH_CHUNKS;
  const batchBytes = chunkBytes * batchChunks;
  const window = Math.max(
    1,
    o.window ?? Math.min(DEFAULT_WINDOW, Math.max(2, Math.floor(WINDOW_BYTES / batchBytes))),
  );
  // One buffer per batch in flight: a batch's bytes are sent from its buffer after its diff.
  const buffers = Array.from({ length: window }, () => Buffer.allocUnsafe(batchBytes));
  const read: ReadFn = (disk, offset, length, into) =>
    o.journal.disk(disk).read(offset, length, into);
  const stats = {
    rule: o.rule,
    baseSeq,
    bytesHashed: 0,
    chunksCompared: 0,
    chunksDiffering: 0,
    bytesSent: 0,
  };
  let paused = false;
  /** Step 5 for one hashed batch, once its diff is back: send its differing chunks. */
  const sendBatch = async (hashed: HashedRange, diff: Promise<Diff>): Promise<void> => {
    if (paused || o.signal?.aborted) {
      // Stop between batches: the cursor stays past the last batch applied. The diff is
      // awaited only so that nothing of this run is still running once it returns.
      paused = true;
      await diff.catch(() => undefined);
      return;
    }
    const { differ } = await diff;
    if (o.signal?.aborted) {
      paused = true;
      return;
    }
    const batch = hashed.range;
    const extents: Extent[] = [];
    for (const i of differingIndexes(differ, hashed.hashes.length)) {
      const at = i * chunkBytes;
      const data = hashed.data.subarray(at, Math.min(at + chunkBytes, batch.length));
      const zero = isAllZero(data);
      extents.push({
        disk: batch.disk,
        offset: batch.offset + at,
        length: data.length,
        data: zero ? null : data,
      });
      if (!zero) stats.bytesSent += data.length;
    }
    stats.bytesHashed += batch.length;
    stats.chunksCompared += hashed.hashes.length;
    stats.chunksDiffering += extents.length;
    await o.peer.apply(extents, cursorAfter(batch));
  };
  // The pipeline: batch n is hashed here while the diffs of up to `window - 1` earlier
  // batches are outstanding and their applies run on `applied`, one after the other in grid
  // order, so the replica's durable cursor only moves forward and a pause or crash resumes
  // exactly there. Batches are disjoint, so the replica may hash batch n while batch n - 1 is
  // applied. `slots[k]` is the apply of the batch that last used buffers[k]: awaited before
  // the buffer is refilled, which bounds the batches in flight to `window`.
  let applied: Promise<void> = Promise.resolve();
  const slots: Array<Promise<void>> = [];
  try {
    let n = 0;
    for (const batch of batches(rangesFrom(saved.ranges, cursor), chunkBytes, batchChunks)) {
      const k = n++ % window;
      await slots[k];
      if (paused || o.signal?.aborted) {
        paused = true;
        break;
      }
      assertJournaling(o.journal, saved.id);
      const hashed = await hashRange(read, batch, chunkBytes, algorithm, buffers[k]!);
      const diff = o.peer.diff({ ...batch, hashes: hashed.hashes });
      // Awaited in order by sendBatch; a broken stream must not be an unhandled rejection
      // while the batches before it are still being applied.
      diff.catch(() => undefined);
      applied = applied.then(() => sendBatch(hashed, diff));
      slots[k] = applied;
      // Reading and hashing are synchronous: without a turn of the event loop here, the
      // RangeHashes frame would not leave (nor replies be read) until the window is full.
      await setImmediate();
    }
    await applied;
  } catch (e) {
    // Let the batches in flight settle (their applies keep the cursor exact) before failing.
    await applied.catch(() => undefined);
    throw e;
  }
  if (paused) {
    log.info(stats, 'resync: paused');
    return { ...stats, paused: true };
  }
  assertJournaling(o.journal, saved.id);
  await o.peer.finish(baseSeq);
  await o.journal.markShipped(baseSeq);
  removeJsonFile(o.dir, STATE);
  log.info(stats, 'resync: source done; ship segments after the base');
  return { ...stats, paused: false };
}

/**
 * The segments after the base must all reach the replica; if the journal overflowed again
 * they will not, so this resync cannot end exact. Running it again starts a new one over the
 * union of its ranges and the new dirty bitmap (prepare), and the replica keeps its undo log.
 */
function assertJournaling(journal: ResyncJournal, id: string): void {
  if (journal.state !== 'journaling') {
    throw new SecondsiteError('SS_RESYNC_REQUIRED', 'the journal overflowed during the resync', {
      resync: id,
    });
  }
}

/** Steps 1–4, or the saved resync when one is being resumed. */
async function prepare(o: ResyncSourceOptions): Promise<SavedResync> {
  const chunkBytes = o.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!validChunkBytes(chunkBytes)) {
    throw new SecondsiteError(
      'SS_BAD_INPUT',
      `chunkBytes ${chunkBytes}: a power of two, 4 KiB–4 MiB`,
    );
  }
  const old = readJsonFile<SavedResync>(o.dir, STATE);
  // Still journaling: every write since the saved base is in a segment, so the saved resync
  // resumes as it was (with its chunk size). A new base now would drop segments between the
  // two bases whose writes lie outside the saved ranges.
  if (old && o.journal.state === 'journaling') return old;
  // Overflowed again (or no resync yet): the new bitmap holds every write since the old base,
  // as no segment was shipped meanwhile; the old ranges hold what was not compared yet.
  // A dirty scope needs the bitmap: while journaling there is none, so compare all.
  const dirty = o.scope === 'dirty' && old?.scope !== 'all' && o.journal.state !== 'journaling';
  // The reset hands back the bitmap as it stood at the switch to journaling: every write is
  // then either in those ranges or in a segment after it. A crash before the state file below
  // is written finds the journal journaling and no saved resync: a full compare, still exact.
  const atSwitch =
    o.journal.state === 'resync-required' ? await o.journal.resetAfterResync() : undefined;
  const wanted = dirty
    ? fromDirtyMap(atSwitch ?? o.journal.dirtyRanges())
    : wholeDisks(o.diskSizes);
  const ranges = alignToChunks(
    [...wanted, ...(dirty ? (old?.ranges ?? []) : [])],
    o.diskSizes,
    chunkBytes,
  );
  const point = await o.journal.cut({ type: 'crash-consistent' });
  const saved: SavedResync = {
    version: 1,
    id: randomUUID(),
    scope: dirty ? 'dirty' : 'all',
    baseSeq: point.segment,
    chunkBytes,
    ranges,
  };
  writeJsonFile(o.dir, STATE, saved);
  return saved;
}
