/**
 * The admin token guards the whole REST API. Only its SHA-256 is stored; a presented token is
 * hashed and compared in constant time. Every refusal (no header, wrong scheme, wrong token)
 * looks the same, so a caller learns nothing about why.
 */
import { SecondsiteError } from '../../common/errors/errors.ts';
import { secretMatchesHash } from '../../certs/secrets.ts';

export interface AdminAuth {
  /** Throws SS_UNAUTHENTICATED unless the Authorization header carries the admin token. */
  check(authorization: string | undefined): void;
}

export function adminAuth(tokenHash: string): AdminAuth {
  return {
    check(authorization) {
      const m = /^Bearer ([A-Za-z0-9_-]{1,200})$/.exec(authorization ?? '');
      if (m?.[1] === undefined || !secretMatchesHash(m[1], tokenHash)) {
        throw new SecondsiteError('SS_UNAUTHENTICATED', 'authentication required');
      }
    },
  };
}
