import { describe, expect, it } from 'vitest';
import { isSecondsiteError } from '../../../common/errors/errors.ts';
import {
  checkManifest,
  chunkDigest,
  chunkMatches,
  chunkRefusal,
  sizeRefusal,
  type OfflineManifest,
} from './offline-manifest.ts';

const data = Buffer.alloc(4096, 7);
const zero = Buffer.alloc(4096);
const manifest: OfflineManifest = {
  version: 1,
  vm: 'VM1',
  exportId: 'x1',
  baseSeq: 4,
  chunkBytes: 4096,
  algorithm: 'blake3',
  createdAt: 0,
  disks: [
    { index: 0, file: 'disk-0.img', sizeBytes: 8192, chunks: [chunkDigest('blake3', data), null] },
  ],
};
const expect0 = { vm: 'VM1', exportId: 'x1', diskSizes: [8192], where: '/i/VM1/manifest.json' };

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isSecondsiteError(e)) return `${e.code} ${e.message}`;
    throw e;
  }
  throw new Error('not refused');
}

describe('offline manifest', () => {
  it('zero chunks have no digest; others a hex digest', () => {
    expect(chunkDigest('blake3', zero)).toBeNull();
    expect(chunkDigest('sha256', data)).toMatch(/^[0-9a-f]{64}$/);
  });
  it('a chunk matches its digest; one changed byte does not; a null chunk must read zeros', () => {
    const d = chunkDigest('blake3', data);
    expect(chunkMatches('blake3', d, data)).toBe(true);
    const bad = Buffer.from(data);
    bad[100] = 0;
    expect(chunkMatches('blake3', d, bad)).toBe(false);
    expect(chunkMatches('blake3', null, zero)).toBe(true);
    expect(chunkMatches('blake3', null, data)).toBe(false);
    expect(chunkMatches('blake3', d, data.subarray(0, 100))).toBe(false);
  });
  it('accepts the manifest it expects', () => {
    expect(checkManifest(manifest, expect0)).toBe(manifest);
    expect(checkManifest(manifest, { ...expect0, exportId: undefined })).toBe(manifest);
  });
  it('refuses another VM, another export, other disk sizes, a wrong chunk count, junk', () => {
    expect(refusal(() => checkManifest({ ...manifest, vm: 'VM2' }, expect0))).toMatch(
      /SS_IMPORT_INVALID .*VM2, not of VM1/,
    );
    expect(refusal(() => checkManifest({ ...manifest, exportId: 'x0' }, expect0))).toMatch(
      /holds export x0, not x1/,
    );
    expect(refusal(() => checkManifest(manifest, { ...expect0, diskSizes: [4096] }))).toMatch(
      /disk sizes/,
    );
    const short = { ...manifest, disks: [{ ...manifest.disks[0]!, chunks: [null] }] };
    expect(refusal(() => checkManifest(short, expect0))).toMatch(/1 chunks, not 2/);
    const escape = { ...manifest, disks: [{ ...manifest.disks[0]!, file: '../x' }] };
    expect(refusal(() => checkManifest(escape, expect0))).toMatch(/malformed/);
    expect(refusal(() => checkManifest(null, expect0))).toMatch(/not a secondsite export/);
  });
  it('refusals name the file and the chunk', () => {
    const c = chunkRefusal('/i/VM1/disk-0.img', 3, 4096);
    expect(c.message).toContain('/i/VM1/disk-0.img chunk 3 (offset 12288)');
    expect(c.details).toMatchObject({ file: '/i/VM1/disk-0.img', chunk: 3 });
    expect(sizeRefusal('/i/VM1/disk-0.img', 10, 20).message).toMatch(
      /10 bytes, not 20: the copy is incomplete/,
    );
  });
});
