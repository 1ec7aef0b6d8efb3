/**
 * The primary's initial copy of one VM (issue item 7), run by the sender while the pairing's
 * baseline is 'initial-copy-required':
 *  1. { copyId, baseSeq } of the copy: the one persisted in <vmDir>/initial-copy.json when it
 *     still fits (same peer and epoch, the journal still holds segment baseSeq and continues at
 *     baseSeq + 1), else a new one: a cut makes baseSeq and the pair is persisted before any
 *     byte travels, so a restart resumes the same copy at the replica's watermark;
 *  2. one InitialCopy attempt (agent/host/transport/initial-copy-client.ts); the server says
 *     where to begin, progress is reported as it becomes durable there;
 *  3. on success: segments <= baseSeq are marked shipped, the state file is removed, the
 *     baseline becomes 'copied' (persisted). A crash between these steps at worst copies again.
 * A failure throws; the sender backs off and calls again (which resumes).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../../common/log/log.ts';
import type { VmJournal } from '../journal/types.ts';
import { initialCopySource } from '../sync/initial-copy-source.ts';
import { readJsonFile, removeJsonFile, writeJsonFile } from '../sync/sync-state-file.ts';
import type { SyncProgress } from '../sync/types.ts';
import type { SyncClient } from '../transport/replication-client.ts';
import type { Pairing } from './pairing.ts';

const STATE_FILE = 'initial-copy.json';

interface CopyState {
  readonly version: 1;
  readonly copyId: string;
  readonly baseSeq: number;
  readonly epoch: number;
  readonly peerHost: string;
}

export interface PrimaryCopyOptions {
  readonly client: SyncClient;
  readonly diskSizes: readonly number[];
  /** Where the copy's { copyId, baseSeq } is kept (the VM's folder). */
  readonly stateDir: string;
  /** Persists the pairing's new baseline (VmManager.setBaseline). */
  setBaseline(baseline: Pairing['baseline']): Promise<void>;
  /** Source chunk size. @default 1 MiB (initial-copy-source.ts) */
  readonly chunkBytes?: number;
}

export interface RunCopyInput {
  readonly vm: string;
  readonly pairing: Pairing;
  readonly journal: VmJournal;
  readonly log: Logger;
  readonly signal: AbortSignal;
  readonly onProgress: (p: SyncProgress) => void;
}

/** Steps 1–3 of the file comment; resolves with the copy's baseSeq. */
export async function runPrimaryInitialCopy(
  o: PrimaryCopyOptions,
  i: RunCopyInput,
): Promise<number> {
  const state = await copyState(o, i);
  i.log.info({ copyId: state.copyId, baseSeq: state.baseSeq }, 'initial copy: attempt');
  const result = await o.client.initialCopy({
    vmId: i.vm,
    epoch: i.pairing.epoch,
    copyId: state.copyId,
    diskSizes: o.diskSizes,
    baseSeq: state.baseSeq,
    source: (at) =>
      initialCopySource({
        journal: i.journal,
        diskSizes: o.diskSizes,
        baseSeq: at.baseSeq ?? state.baseSeq,
        from: at.from,
        ...(o.chunkBytes ? { chunkBytes: o.chunkBytes } : {}),
        log: i.log,
      }),
    onProgress: i.onProgress,
    compress: i.pairing.compression,
    signal: i.signal,
  });
  await i.journal.markShipped(result.baseSeq);
  removeJsonFile(o.stateDir, STATE_FILE);
  await o.setBaseline('copied');
  i.log.info({ baseSeq: result.baseSeq, from: result.from }, 'initial copy: done');
  return result.baseSeq;
}

async function copyState(o: PrimaryCopyOptions, i: RunCopyInput): Promise<CopyState> {
  const old = readJsonFile<CopyState>(o.stateDir, STATE_FILE);
  const fits =
    old?.version === 1 &&
    typeof old.copyId === 'string' &&
    old.epoch === i.pairing.epoch &&
    old.peerHost === i.pairing.peerHost &&
    journalContinues(i.journal, old.baseSeq);
  if (fits) return old;
  const cut = await i.journal.cut({ type: 'crash-consistent' });
  const state: CopyState = {
    version: 1,
    copyId: randomUUID(),
    baseSeq: cut.segment,
    epoch: i.pairing.epoch,
    peerHost: i.pairing.peerHost,
  };
  writeJsonFile(o.stateDir, STATE_FILE, state);
  return state;
}

/** The journal still holds segment `baseSeq` and every segment after it. */
function journalContinues(journal: VmJournal, baseSeq: number): boolean {
  const sealed = journal.sealedSegments();
  if (!sealed.some((s) => s.seq === baseSeq)) return false;
  const next = sealed.find((s) => s.seq > baseSeq);
  return !next || next.seq === baseSeq + 1;
}
