/**
 * One error taxonomy for the whole product (STYLE.md rule 4). Every failure that crosses a
 * process boundary is a SecondsiteError with a stable code; each edge (HTTP, gRPC, WebSocket,
 * CLI) maps the code in one place. Clients rebuild the typed error from the code and never
 * match on message text. docs/errors.md lists every code; a unit test keeps the two in step.
 */
import { ERROR_CATALOGUE, type ErrorCode } from './catalogue.ts';

export type { ErrorCode } from './catalogue.ts';

export class SecondsiteError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SecondsiteError';
    this.code = code;
    this.details = Object.freeze({ ...details });
  }

  /** The kind decides exit codes and status codes: bad input changed nothing. */
  get kind(): 'bad-input' | 'not-found' | 'conflict' | 'unauthenticated' | 'failed' {
    return ERROR_CATALOGUE[this.code].kind;
  }

  toJSON(): { code: ErrorCode; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: { ...this.details } };
  }
}

export function isSecondsiteError(e: unknown): e is SecondsiteError {
  return e instanceof SecondsiteError;
}

/** Shorthand for the most common refusal: a named input field with a bad value. */
export function badInput(
  field: string,
  message: string,
  details: Record<string, unknown> = {},
): SecondsiteError {
  return new SecondsiteError('SS_BAD_INPUT', `${field}: ${message}`, { field, ...details });
}

/** CLI exit code for an error: 2 bad usage/input (nothing changed), 1 the action failed. */
export function exitCodeFor(e: unknown): 1 | 2 {
  return isSecondsiteError(e) && e.kind === 'bad-input' ? 2 : 1;
}
