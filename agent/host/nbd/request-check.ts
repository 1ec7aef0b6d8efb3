/**
 * The edge check of every transmission request (STYLE.md rule 8: size checks at the edge),
 * done before the device sees it. Pure, so every refusal is unit-tested.
 *
 * Rules, in order (the first that fires decides the errno):
 *   1. unknown command type → EINVAL (proto.md: SHOULD return EINVAL for unknown commands);
 *   2. a flag not documented for the command → EINVAL. FUA is accepted on every command
 *      because SEND_FUA is advertised (proto.md: the server MUST accept it, even by ignoring
 *      it); NO_HOLE only on WRITE_ZEROES, where zeroes are always written anyway;
 *   3. READ/WRITE longer than the advertised maximum payload → EINVAL (a WRITE that long never
 *      gets here: its payload cannot be trusted and the connection is closed instead);
 *   4. a range past the end → ENOSPC for commands that write data (proto.md SHOULD), EINVAL for
 *      the others. TRIM and WRITE_ZEROES carry no payload, so any in-range length is fine.
 * FLUSH and DISC ignore offset and length.
 */
import { Cmd, CmdFlag, Errno, MAX_PAYLOAD, type Request } from '../../../common/nbd/protocol.ts';

/** The command types this server executes (DISC is handled by the transmission loop). */
const KNOWN: ReadonlySet<number> = new Set([
  Cmd.READ,
  Cmd.WRITE,
  Cmd.DISC,
  Cmd.FLUSH,
  Cmd.TRIM,
  Cmd.WRITE_ZEROES,
]);

function allowedFlags(type: number): number {
  return type === Cmd.WRITE_ZEROES ? CmdFlag.FUA | CmdFlag.NO_HOLE : CmdFlag.FUA;
}

/** 0 when the request may go to the device, else the errno to reply with. */
export function checkRequest(req: Omit<Request, 'magic' | 'cookie'>, exportSize: number): number {
  if (!KNOWN.has(req.type)) return Errno.EINVAL;
  if ((req.flags & ~allowedFlags(req.type)) !== 0) return Errno.EINVAL;
  if (req.type === Cmd.FLUSH || req.type === Cmd.DISC) return 0;
  if ((req.type === Cmd.READ || req.type === Cmd.WRITE) && req.length > MAX_PAYLOAD) {
    return Errno.EINVAL;
  }
  if (req.offset > exportSize || req.length > exportSize - req.offset) {
    return req.type === Cmd.WRITE || req.type === Cmd.WRITE_ZEROES ? Errno.ENOSPC : Errno.EINVAL;
  }
  return 0;
}
