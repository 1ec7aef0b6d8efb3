/**
 * The one place where errors become HTTP responses: status from the error's kind, body
 * `{error: {code, message, details}}`. Anything that is not a SecondsiteError is logged and
 * answered as SS_INTERNAL without its message, so internals never leak to a caller.
 */
import { SecondsiteError, isSecondsiteError } from '../../common/errors/errors.ts';
import type { ApiErrorBody } from '../../common/api-client/types.ts';

const STATUS_BY_KIND = {
  'bad-input': 400,
  'not-found': 404,
  conflict: 409,
  unauthenticated: 401,
  failed: 500,
} as const;

const STATUS_BY_CODE: Partial<Record<string, number>> = {
  SS_UNAVAILABLE: 503,
  SS_TIMEOUT: 504,
};

export function statusFor(e: SecondsiteError): number {
  return STATUS_BY_CODE[e.code] ?? STATUS_BY_KIND[e.kind];
}

/** Fastify's own refusals (bad JSON, wrong content type, body too large) are bad input. */
function fromFastify(e: unknown): SecondsiteError | undefined {
  const err = e as { statusCode?: number; code?: string; message?: string };
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return new SecondsiteError('SS_BAD_INPUT', `request: ${err.message ?? 'refused'}`, {
      field: 'request',
      reason: err.code,
    });
  }
  return undefined;
}

export function toHttpError(e: unknown): {
  status: number;
  body: ApiErrorBody;
  unexpected: boolean;
} {
  const known = isSecondsiteError(e) ? e : fromFastify(e);
  if (known !== undefined) {
    return { status: statusFor(known), body: { error: known.toJSON() }, unexpected: false };
  }
  const internal = new SecondsiteError('SS_INTERNAL', 'internal error; see the coordinator log');
  return { status: 500, body: { error: internal.toJSON() }, unexpected: true };
}
