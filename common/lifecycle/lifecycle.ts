/**
 * Long-lived parts expose create(opts) → { run(signal), shutdown() } (STYLE.md rule 1), so a
 * main only wires them together and tests drive them in-process.
 */
export interface Service {
  /** Runs until the signal aborts or the service fails. */
  run(signal: AbortSignal): Promise<void>;
  /** Stops accepting work, finishes or fails what is in flight, releases resources. */
  shutdown(): Promise<void>;
}

/** Resolves when the process receives SIGTERM or SIGINT; aborts the returned controller. */
export function abortOnSignals(): AbortController {
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return controller;
}
