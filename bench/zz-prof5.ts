import { mkdtempSync, rmSync, openSync, readSync, writeSync, closeSync, constants, fdatasyncSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
const GiB = 1 << 30, BLOCK = 65536, BLOCKS = GiB / BLOCK, PER = 164;
const dir = mkdtempSync(join(tmpdir(), 'zz-')); const path = join(dir, 'd');
const fd = openSync(path, constants.O_CREAT | constants.O_RDWR); const chunk = randomBytes(1 << 20);
for (let a = 0; a < GiB; a += chunk.length) writeSync(fd, chunk, 0, chunk.length, a); fdatasyncSync(fd);
const buf = Buffer.allocUnsafe(PER * BLOCK);
const pick = () => { const p = new Set<number>(); while (p.size < PER) p.add(Math.floor(Math.random() * BLOCKS)); return [...p].sort((a, b) => a - b); };
const drop = () => execFileSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']);
const fh = await open(path, 'r');
let tsync = 0, tasync = 0;
for (let i = 0; i < 10; i++) {
  let b = pick(); drop(); let s = process.hrtime.bigint();
  b.forEach((blk, k) => readSync(fd, buf, k * BLOCK, BLOCK, blk * BLOCK)); tsync += Number(process.hrtime.bigint() - s) / 1e6;
  b = pick(); drop(); s = process.hrtime.bigint();
  let next = 0; const worker = async () => { while (next < b.length) { const k = next++; await fh.read(buf, k * BLOCK, BLOCK, b[k]! * BLOCK); } };
  await Promise.all(Array.from({ length: 16 }, worker)); tasync += Number(process.hrtime.bigint() - s) / 1e6;
}
console.log('cold 164×64KiB sync', (tsync / 10).toFixed(1), 'ms; async QD16', (tasync / 10).toFixed(1), 'ms');
await fh.close(); closeSync(fd); rmSync(dir, { recursive: true, force: true });
