/**
 * InitialCopy over the replication port: real gRPC with mutual TLS and a test CA, the source's
 * disks behind a real VM journal, the replica behind a real recovery store and
 * InitialCopyTarget (test/helpers/replication-pair.ts).
 *
 * 1. A disk pair with ~30% zero chunks is copied while the guest keeps writing through the
 *    journal; zero chunks travel as zero ranges; progress is reported up to the total; after
 *    the post-copy segments are shipped on ShipSegments the replica is bit-exact.
 * 2. A copy cancelled mid-way resumes at the replica's durable watermark: the second attempt
 *    sends only what lay past it, and the result is still bit-exact.
 * Negative steps: a valid host not paired with the VM is refused before anything is written;
 * frames out of order and a chunk whose CRC fails end the stream with a typed error.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isSecondsiteError, type SecondsiteError } from '../../common/errors/errors.ts';
import { silentLogger } from '../../common/log/log.ts';
import { Feature } from '../../agent/host/replication/protocol.ts';
import { chunkDigestOf } from '../../agent/host/replication/segment-digest.ts';
import { bytesBefore, wholeDisks } from '../../agent/host/sync/chunk-grid.ts';
import {
  initialCopySource,
  type InitialCopySource,
} from '../../agent/host/sync/initial-copy-source.ts';
import type { SyncProgress } from '../../agent/host/sync/types.ts';
import type {
  InitialCopyOptions,
  SyncClient,
} from '../../agent/host/transport/replication-client.ts';
import { replicationService } from '../../agent/host/transport/replication-service.ts';
import { startPair, SENDER, VM, type Pair } from '../helpers/replication-pair.ts';
import { seededRandom, type Random } from '../helpers/seeded-random.ts';
import {
  fileBytes,
  guestWrites,
  makeImage,
  openReplica,
  openSource,
  sourceBytes,
  type LabJournal,
  type Replica,
} from '../helpers/sync-lab.ts';
import { hostIdentity } from '../helpers/test-ca.ts';
import { waitFor } from '../helpers/wait-for.ts';

const MiB = 1 << 20;
const SIZES = [40 * MiB, 12 * MiB + 64 * 1024];
const TOTAL = SIZES[0]! + SIZES[1]!;
const CHUNK = 256 * 1024;
const SEED = Number(process.env['SEED'] ?? Date.now() % 1e9);
console.log(`replication-initial-copy: SEED=${SEED}`);

let dir: string;
let j: LabJournal;
let rep: Replica;
let pair: Pair;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'net-copy-'));
  const r = seededRandom(SEED);
  SIZES.forEach((s, i) => makeImage(join(dir, `src${i}.img`), s, CHUNK, r, 0.3));
  j = await openSource(dir, SIZES);
  rep = await openReplica(dir, SIZES);
  pair = await startPair(() => rep, { dir, flushEveryBytes: 4 * MiB });
});

afterEach(async () => {
  await pair.close();
  await rep.store.close();
  await j.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A source whose chunks the guest writes between (every 10th chunk), like a running VM. */
function sourceFactory(
  r: Random,
  made: InitialCopySource[],
  each?: (n: number) => void,
): InitialCopyOptions['source'] {
  return async (at) => {
    const src = await initialCopySource({
      journal: j,
      diskSizes: SIZES,
      chunkBytes: CHUNK,
      ...(at.baseSeq !== undefined ? { baseSeq: at.baseSeq } : {}),
      from: at.from,
      log: silentLogger,
    });
    made.push(src);
    let n = 0;
    return {
      baseSeq: src.baseSeq,
      progress: () => src.progress(),
      async *chunks() {
        for await (const c of src.chunks()) {
          yield c;
          each?.(++n);
          if (n % 10 === 0) await guestWrites(j, SIZES, r, 1);
        }
      },
    };
  };
}

async function expectExact(): Promise<void> {
  const last = await j.cut({ type: 'crash-consistent' });
  await pair.ship(j, rep.store.lastApplied);
  expect(rep.store.latest()?.id).toBe(last.id);
  for (const [i, size] of SIZES.entries()) {
    const want = await sourceBytes(j, i, size);
    expect(fileBytes(rep.paths[i]!).equals(want), `disk ${i}`).toBe(true);
    expect(rep.store.read(i, 0, size, last.id).equals(want), `disk ${i} at ${last.id}`).toBe(true);
  }
}

async function errorOf(p: Promise<unknown>): Promise<SecondsiteError> {
  try {
    await p;
  } catch (e) {
    if (isSecondsiteError(e)) return e;
    throw e;
  }
  throw new Error('expected a failure');
}

/** The server frees a VM once it has seen the cancelled stream end: retry only that refusal. */
async function copyWhenFree(
  client: SyncClient,
  o: InitialCopyOptions,
): ReturnType<SyncClient['initialCopy']> {
  return waitFor(async () => {
    try {
      return await client.initialCopy(o);
    } catch (e) {
      if (isSecondsiteError(e) && e.code === 'SS_CONFLICT') return undefined;
      throw e;
    }
  });
}

describe('InitialCopy over mTLS', () => {
  it('copies with zero ranges while the guest writes, reports progress, and ends bit-exact after the shipped segments', async () => {
    const r = seededRandom(SEED + 1);
    const seen: SyncProgress[] = [];
    const made: InitialCopySource[] = [];
    const res = await pair.client().initialCopy({
      vmId: VM,
      epoch: 1,
      copyId: 'copy-1',
      diskSizes: SIZES,
      source: sourceFactory(r, made),
      onProgress: (p) => seen.push(p),
    });
    expect(made).toHaveLength(1);
    expect(res.from).toEqual({ disk: 0, offset: 0 });
    expect(res.baseSeq).toBe(made[0]!.baseSeq);
    expect(res.dataBytes + res.zeroBytes).toBe(TOTAL);
    // About 30% of the chunks were zero (fewer once the guest wrote into some of them) and
    // travelled as zero ranges, without bytes.
    expect(res.zeroBytes / TOTAL).toBeGreaterThan(0.12);
    expect(res.zeroBytes / TOTAL).toBeLessThan(0.45);
    expect(res.payloadBytes).toBe(res.dataBytes);
    // Durable progress: from 0, never backwards, several flushes, up to the total.
    expect(seen[0]).toEqual({ bytesDone: 0, bytesTotal: TOTAL });
    expect(seen.at(-1)).toEqual({ bytesDone: TOTAL, bytesTotal: TOTAL });
    expect(seen.length).toBeGreaterThan(5);
    seen.slice(1).forEach((p, i) => expect(p.bytesDone).toBeGreaterThanOrEqual(seen[i]!.bytesDone));
    expect(rep.store.lastApplied).toBe(res.baseSeq);
    expect(rep.store.latest()).toBeUndefined(); // no point until segment base + 1
    await guestWrites(j, SIZES, r, 5);
    await expectExact();
  });

  it('resumes a cancelled copy at the replica watermark and sends only the rest', async () => {
    const r = seededRandom(SEED + 2);
    const client = pair.client();
    const stop = new AbortController();
    const made: InitialCopySource[] = [];
    // The connection breaks once the replica has made a random 30–60% durable.
    const stopAt = Math.floor(TOTAL * (0.3 + 0.3 * r.next()));
    let durable = 0;
    let sent = 0;
    const opts = { vmId: VM, epoch: 1, copyId: 'copy-2', diskSizes: SIZES };
    const first = await errorOf(
      client.initialCopy({
        ...opts,
        source: sourceFactory(r, made, (n) => (sent = n * CHUNK)),
        onProgress: (p) => {
          durable = p.bytesDone;
          if (durable >= stopAt) stop.abort();
        },
        signal: stop.signal,
      }),
    );
    expect(first.code).toBe('SS_CANCELLED');
    const baseSeq = made[0]!.baseSeq;
    expect(existsSync(join(dir, 'replica', 'initial-copy.json'))).toBe(true);
    // A new attempt with the same copy id and base: the replica says where to begin.
    const seen: SyncProgress[] = [];
    const again = await copyWhenFree(client, {
      ...opts,
      baseSeq,
      source: sourceFactory(r, made),
      onProgress: (p) => seen.push(p),
    });
    expect(again.baseSeq).toBe(baseSeq);
    const done = bytesBefore(wholeDisks(SIZES), again.from);
    expect(done).toBeGreaterThanOrEqual(durable);
    expect(done).toBeLessThanOrEqual(sent);
    expect(done).toBeLessThan(TOTAL);
    expect(seen[0]!.bytesDone).toBe(done);
    expect(again.dataBytes + again.zeroBytes).toBe(TOTAL - done);
    expect(existsSync(join(dir, 'replica', 'initial-copy.json'))).toBe(false);
    await guestWrites(j, SIZES, r, 4);
    await expectExact();
  });

  it('refuses a valid host that is not paired with the VM, before writing anything', async () => {
    const stranger = pair.client(hostIdentity('v1', 'hv-c'));
    const e = await errorOf(
      stranger.initialCopy({
        vmId: VM,
        epoch: 1,
        copyId: 'x',
        diskSizes: SIZES,
        source: () => initialCopySource({ journal: j, diskSizes: SIZES, log: silentLogger }),
      }),
    );
    expect(e.code).toBe('SS_NOT_PAIRED');
    expect(existsSync(join(dir, 'replica', 'initial-copy.json'))).toBe(false);
  });
});

/** Writes raw frames on an InitialCopy call; resolves with the status the server ended it with. */
async function rawCopy(frames: object[]): Promise<grpc.StatusObject> {
  const cert = pair.ca.issue(SENDER);
  const creds = grpc.credentials.createSsl(
    Buffer.from(pair.ca.rootCertPem),
    Buffer.from(cert.keyPem),
    Buffer.from(cert.chainPem),
    { checkServerIdentity: () => undefined },
  );
  const Ctor = replicationService();
  const raw = new Ctor(`127.0.0.1:${pair.port}`, creds, {}) as grpc.Client &
    Record<string, () => grpc.ClientDuplexStream<object, object>>;
  const call = raw['initialCopy']!();
  const status = new Promise<grpc.StatusObject>((r) => call.on('status', r));
  call.on('error', () => undefined);
  call.on('data', () => undefined);
  for (const f of frames) call.write(f);
  const s = await status;
  raw.close();
  return s;
}

describe('InitialCopy edge checks', () => {
  const hello = { hello: { protocolMin: 1, protocolMax: 1, featureFlags: 7, vmId: VM, epoch: 1 } };
  const start = { start: { vmId: VM, copyId: 'raw', diskSizes: SIZES, baseSeq: 1 } };
  const data = Buffer.alloc(4096, 7);
  const chunk = (crc: number) => ({
    chunk: {
      extents: [{ disk: 0, offset: 0, length: data.length, zero: false }],
      payload: data,
      compression: 'COMPRESSION_NONE',
      rawLength: data.length,
      crc32: crc,
    },
  });

  it('ends a stream whose first frame is not Hello, and one that skips CopyStart', async () => {
    const a = await rawCopy([start]);
    expect(a.metadata.get('ss-code')).toEqual(['SS_PROTOCOL']);
    const b = await rawCopy([hello, chunk(crc32(data))]);
    expect(b.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(b.metadata.get('ss-code')).toEqual(['SS_PROTOCOL']);
  });

  it('ends the stream on a chunk whose CRC fails; nothing past the watermark counts', async () => {
    const s = await rawCopy([hello, start, chunk((crc32(data) ^ 1) >>> 0)]);
    expect(s.code).toBe(grpc.status.DATA_LOSS);
    expect(s.metadata.get('ss-code')).toEqual(['SS_CHECKSUM_MISMATCH']);
    expect(fileBytes(rep.paths[0]!).subarray(0, data.length).equals(data)).toBe(false);
  });

  it('ends the stream on a chunk whose digest fails, with chunk digests agreed', async () => {
    const withDigests = { hello: { ...hello.hello, featureFlags: 7 | Feature.chunkDigest } };
    const bad = chunk(0);
    const wrong = { chunk: { ...bad.chunk, digest: chunkDigestOf(Buffer.alloc(data.length)) } };
    const s = await rawCopy([withDigests, start, wrong]);
    expect(s.code).toBe(grpc.status.DATA_LOSS);
    expect(s.metadata.get('ss-code')).toEqual(['SS_CHECKSUM_MISMATCH']);
    expect(fileBytes(rep.paths[0]!).subarray(0, data.length).equals(data)).toBe(false);
  });
});
