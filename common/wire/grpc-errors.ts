/**
 * The one mapping between SecondsiteError and gRPC status (STYLE.md rule 4): servers turn an
 * error into a status with the product's code in the trailing metadata key `ss-code`; clients
 * rebuild the typed error from that code, never from the message text.
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { SecondsiteError, isSecondsiteError } from '../errors/errors.ts';
import { ERROR_CATALOGUE, type ErrorCode, type ErrorKind } from '../errors/catalogue.ts';

const STATUS_OF_KIND: Readonly<Record<ErrorKind, status>> = Object.freeze({
  'bad-input': status.INVALID_ARGUMENT,
  'not-found': status.NOT_FOUND,
  conflict: status.FAILED_PRECONDITION,
  unauthenticated: status.UNAUTHENTICATED,
  failed: status.INTERNAL,
});

/** Codes whose gRPC status is more precise than their kind's. */
const STATUS_OF_CODE: Readonly<Partial<Record<ErrorCode, status>>> = Object.freeze({
  SS_NOT_PAIRED: status.PERMISSION_DENIED,
  SS_CHECKSUM_MISMATCH: status.DATA_LOSS,
  SS_PROTOCOL: status.INVALID_ARGUMENT,
});

/** For a server handler's callback. Unknown errors become SS_INTERNAL. */
export function toGrpcError(e: unknown): Partial<ServiceError> {
  const err = isSecondsiteError(e)
    ? e
    : new SecondsiteError('SS_INTERNAL', e instanceof Error ? e.message : String(e));
  const metadata = new Metadata();
  metadata.set('ss-code', err.code);
  metadata.set('ss-details', JSON.stringify(err.details));
  return {
    code: STATUS_OF_CODE[err.code] ?? STATUS_OF_KIND[err.kind],
    details: err.message,
    metadata,
  };
}

/** For a client: the typed error the server meant, or SS_UNAVAILABLE when none was reached. */
export function fromGrpcError(e: ServiceError, what: string): SecondsiteError {
  const code = e.metadata?.get('ss-code')[0];
  if (typeof code === 'string' && code in ERROR_CATALOGUE) {
    const raw = e.metadata.get('ss-details')[0];
    let details: Record<string, unknown> = {};
    try {
      details = typeof raw === 'string' ? (JSON.parse(raw) as Record<string, unknown>) : {};
    } catch {
      // details are a courtesy; the code and message carry the meaning
    }
    return new SecondsiteError(code as ErrorCode, e.details, details);
  }
  if (e.code === status.UNAVAILABLE) {
    return new SecondsiteError(
      'SS_UNAVAILABLE',
      `${what} is not reachable: ${e.details}`,
      {},
      { cause: e },
    );
  }
  if (e.code === status.DEADLINE_EXCEEDED) {
    return new SecondsiteError('SS_TIMEOUT', `${what} did not answer in time`, {}, { cause: e });
  }
  return new SecondsiteError('SS_INTERNAL', `${what}: ${e.details || e.message}`, {}, { cause: e });
}
