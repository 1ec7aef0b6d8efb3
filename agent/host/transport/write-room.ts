/**
 * Waiting for HTTP/2 flow control to make room on a gRPC client stream, without ever
 * rejecting: the stream's end is reported by its owner (its 'error'/'status' handlers fail the
 * call with a typed error), so this only has to wake up — on 'drain', or because the stream
 * errored, ended or closed. `events.once` is not used for this: it rejects with the raw
 * ServiceError on 'error', and a writer chain nobody awaits then becomes an unhandled
 * rejection, which ends the host agent.
 */
import type { EventEmitter } from 'node:events';

const WAKE_EVENTS = ['drain', 'error', 'status', 'close', 'finish'] as const;

/** Resolves once `stream` can take more writes or is finished one way or another. */
export function roomOrEnd(stream: EventEmitter, closed: () => boolean): Promise<void> {
  if (closed()) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      for (const e of WAKE_EVENTS) stream.off(e, done);
      resolve();
    };
    for (const e of WAKE_EVENTS) stream.on(e, done);
  });
}
