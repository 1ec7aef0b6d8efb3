import { describe, expect, it } from 'vitest';
import { Cmd, CmdFlag, Errno, MAX_PAYLOAD } from '../../../common/nbd/protocol.ts';
import { checkRequest } from './request-check.ts';

const SIZE = 1 << 20;
const req = (type: number, offset: number, length: number, flags = 0) => ({
  type,
  offset,
  length,
  flags,
});

describe('checkRequest', () => {
  it.each([
    ['read in range', req(Cmd.READ, 0, SIZE), 0],
    ['read ending exactly at the end', req(Cmd.READ, SIZE - 1, 1), 0],
    ['zero-length read at the end', req(Cmd.READ, SIZE, 0), 0],
    ['write with FUA', req(Cmd.WRITE, 0, 512, CmdFlag.FUA), 0],
    ['flush with FUA (accepted on every command)', req(Cmd.FLUSH, 0, 0, CmdFlag.FUA), 0],
    ['flush ignores offset and length', req(Cmd.FLUSH, 2 ** 60, 7), 0],
    ['write zeroes with NO_HOLE', req(Cmd.WRITE_ZEROES, 0, SIZE, CmdFlag.NO_HOLE), 0],
    ['trim of the whole disk', req(Cmd.TRIM, 0, SIZE), 0],
  ])('accepts %s', (_name, r, expected) => {
    expect(checkRequest(r, SIZE)).toBe(expected);
  });

  it.each([
    ['unknown command', req(42, 0, 0), Errno.EINVAL],
    ['BLOCK_STATUS (not negotiable here)', req(Cmd.BLOCK_STATUS, 0, 512), Errno.EINVAL],
    ['CACHE', req(Cmd.CACHE, 0, 512), Errno.EINVAL],
    ['unknown flag bit', req(Cmd.READ, 0, 512, 1 << 12), Errno.EINVAL],
    ['NO_HOLE on trim', req(Cmd.TRIM, 0, 512, CmdFlag.NO_HOLE), Errno.EINVAL],
    ['DF on read (not advertised)', req(Cmd.READ, 0, 512, CmdFlag.DF), Errno.EINVAL],
    ['FAST_ZERO (not advertised)', req(Cmd.WRITE_ZEROES, 0, 512, CmdFlag.FAST_ZERO), Errno.EINVAL],
    ['read over the maximum payload', req(Cmd.READ, 0, MAX_PAYLOAD + 1), Errno.EINVAL],
    ['read past the end', req(Cmd.READ, SIZE - 1, 2), Errno.EINVAL],
    ['read starting past the end', req(Cmd.READ, SIZE + 1, 0), Errno.EINVAL],
    ['read at a 2^63 offset', req(Cmd.READ, 2 ** 63, 1), Errno.EINVAL],
    ['trim past the end', req(Cmd.TRIM, SIZE, 1), Errno.EINVAL],
    ['write past the end', req(Cmd.WRITE, SIZE - 1, 2), Errno.ENOSPC],
    ['write zeroes past the end', req(Cmd.WRITE_ZEROES, 0, SIZE + 1), Errno.ENOSPC],
  ])('refuses %s', (_name, r, expected) => {
    expect(checkRequest(r, SIZE)).toBe(expected);
  });

  it('checks the command before the flags and the flags before the range', () => {
    expect(checkRequest(req(42, SIZE * 2, 1, 1 << 12), SIZE)).toBe(Errno.EINVAL);
    expect(checkRequest(req(Cmd.WRITE, SIZE * 2, 1, 1 << 12), SIZE)).toBe(Errno.EINVAL);
  });
});
