/**
 * In-memory index of the undo files kept on disk: per segment its runs (rebuilt at open from
 * the files' headers and tables), so a point-in-time read finds its sources with binary
 * searches instead of scanning files. Also caches a few read-only descriptors for those reads.
 *
 * Invariant: a segment is in the index from the moment its undo file is fsynced (apply step 1,
 * before any replica byte changes) until the file is deleted. So a read of a committed point
 * that runs while a later segment is mid-apply still finds that segment's old contents.
 */
import { closeSync, openSync, constants } from 'node:fs';
import type { SegmentTouch } from './resolve.ts';
import { preadFull, type UndoFile } from './undo-file.ts';
import { runsTouching } from './undo-runs.ts';

/** Open descriptors kept for reads; more undo files than this are reopened as needed. */
const MAX_OPEN_FILES = 32;

export class UndoIndex {
  private readonly files = new Map<number, UndoFile>();
  /** Ascending. */
  private seqs: number[] = [];
  /** Insertion-ordered, so the first key is the least recently used. */
  private readonly fds = new Map<number, number>();

  add(file: UndoFile): void {
    if (this.files.has(file.seq)) this.remove(file.seq);
    this.files.set(file.seq, file);
    if (this.seqs.length === 0 || this.seqs.at(-1)! < file.seq) this.seqs.push(file.seq);
    else this.seqs = [...this.seqs, file.seq].sort((a, b) => a - b);
  }

  remove(seq: number): void {
    if (!this.files.delete(seq)) return;
    this.seqs = this.seqs.filter((s) => s !== seq);
    const fd = this.fds.get(seq);
    if (fd !== undefined) {
      this.fds.delete(seq);
      closeSync(fd);
    }
  }

  get(seq: number): UndoFile | undefined {
    return this.files.get(seq);
  }

  /** Indexed seqs, ascending. */
  list(): readonly number[] {
    return this.seqs;
  }

  totalBytes(): number {
    let total = 0;
    for (const f of this.files.values()) total += f.bytes;
    return total;
  }

  /** What each segment after `pointSeq` touched in [start, end) of `disk`, ascending, lazily. */
  *touchesAfter(
    pointSeq: number,
    disk: number,
    start: number,
    end: number,
  ): Generator<SegmentTouch> {
    let lo = 0;
    let hi = this.seqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.seqs[mid]! <= pointSeq) lo = mid + 1;
      else hi = mid;
    }
    // Copy: a generator may outlive a remove() that replaces the array.
    for (const seq of this.seqs.slice(lo)) {
      const file = this.files.get(seq);
      if (file) yield { seq, touched: runsTouching(file.runs, disk, start, end) };
    }
  }

  /** Reads old contents of run `ref` of segment `seq`, starting `delta` bytes into the run. */
  readRun(seq: number, ref: number, delta: number, into: Buffer): void {
    const file = this.files.get(seq);
    if (!file) throw new Error(`undo segment ${seq} is not indexed`);
    preadFull(this.fd(file), into, file.runs.fileOffset[ref]! + delta);
  }

  private fd(file: UndoFile): number {
    const cached = this.fds.get(file.seq);
    if (cached !== undefined) {
      this.fds.delete(file.seq);
      this.fds.set(file.seq, cached);
      return cached;
    }
    if (this.fds.size >= MAX_OPEN_FILES) {
      const [oldest, fd] = this.fds.entries().next().value as [number, number];
      this.fds.delete(oldest);
      closeSync(fd);
    }
    const fd = openSync(file.path, constants.O_RDONLY);
    this.fds.set(file.seq, fd);
    return fd;
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
