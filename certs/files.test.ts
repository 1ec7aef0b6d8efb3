import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writePublicFile, writeSecretFile } from './files.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ss-certs-files-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

describe('files', () => {
  it('writes secrets 0600 in new 0700 folders', async () => {
    const p = join(dir, 'a', 'b', 'key.pem');
    await writeSecretFile(p, 'secret');
    expect(await readFile(p, 'utf8')).toBe('secret');
    expect(await mode(p)).toBe(0o600);
    expect(await mode(join(dir, 'a'))).toBe(0o700);
    expect(await mode(join(dir, 'a', 'b'))).toBe(0o700);
  });

  it('makes an existing broader file 0600 when it replaces it', async () => {
    const p = join(dir, 'key.pem');
    await writeFile(p, 'old', { mode: 0o666 });
    await writeSecretFile(p, new Uint8Array([1, 2, 3]));
    expect(await readFile(p)).toEqual(Buffer.from([1, 2, 3]));
    expect(await mode(p)).toBe(0o600);
  });

  it('writes public files 0644 and leaves no temporary files', async () => {
    const p = join(dir, 'cert.pem');
    await writePublicFile(p, 'one');
    await writePublicFile(p, 'two');
    expect(await readFile(p, 'utf8')).toBe('two');
    expect(await mode(p)).toBe(0o644);
    expect(await readdir(dir)).toEqual(['cert.pem']);
  });

  it('fails with SS_IO and cleans up when the target cannot be written', async () => {
    const p = join(dir, 'is-a-dir');
    await writePublicFile(join(p, 'x'), 'x');
    await expect(writeSecretFile(p, 'x')).rejects.toMatchObject({ code: 'SS_IO' });
    expect(await readdir(dir)).toEqual(['is-a-dir']);
  });
});
