/**
 * SECONDSITE_TRACE_MESSAGES: every message the coordinator receives, appended raw to one file
 * (mode 0600). It exists for the privacy test (R32), which searches the file for disk contents
 * written on a host; an operator can use it to see what the coordinator is told.
 */
import { appendFileSync, closeSync, openSync } from 'node:fs';

export function messageTrace(file: string): (message: Buffer) => void {
  closeSync(openSync(file, 'a', 0o600));
  return (message) => appendFileSync(file, message);
}
