/**
 * The one auth adapter of the host-to-host ports (STYLE.md rule 9): every call on 8084 (and
 * later 8083, whose ticket check will yield the same shape) becomes a typed `Caller` before
 * any handler runs. The caller comes only from the certificate TLS verified against the vault
 * CA; its validity is checked again on every call, because TLS checked it only when the
 * connection was made and a connection can outlive its certificate (LAB.md, gRPC).
 *
 * No gRPC import: a call is anything with grpc-js's `getAuthContext()` shape.
 */
import type { PeerCertificate } from 'node:tls';
import {
  assertPeerCertificateCurrent,
  fingerprintOfPeerCertificate,
  identityFromPeerCertificate,
} from '../../certs/peer.ts';
import { formatIdentity, type Identity } from '../../certs/identity.ts';
import { SecondsiteError } from '../../common/errors/errors.ts';
import type { Clock } from '../../common/time/clock.ts';

/** Who is calling, as proved by its certificate (or, on 8083, its ticket). */
export interface Caller {
  readonly identity: Identity;
  /** `secondsite://<vault>/host/<name>`: the form logs and pairings use. */
  readonly uri: string;
  readonly vault: string;
  /** The host name; only host identities may call host-to-host services. */
  readonly host: string;
  /** When the credential stops being valid (ms since the epoch). */
  readonly certNotAfter: number;
  /** SHA-256 fingerprint of the peer certificate. */
  readonly fingerprint: string;
}

/** What a gRPC server call offers (grpc-js `ServerSurfaceCall.getAuthContext`). */
export interface AuthContextSource {
  getAuthContext(): { sslPeerCertificate?: PeerCertificate | undefined } | undefined;
}

/** The caller of a call, or SS_UNAUTHENTICATED / SS_CERT_INVALID. */
export function callerOf(call: AuthContextSource, clock: Clock): Caller {
  const peer = call.getAuthContext()?.sslPeerCertificate;
  return callerFromPeerCertificate(peer, clock.now());
}

export function callerFromPeerCertificate(peer: PeerCertificate | undefined, now: number): Caller {
  assertPeerCertificateCurrent(peer, now);
  const identity = identityFromPeerCertificate(peer);
  if (identity.kind !== 'host') {
    throw new SecondsiteError(
      'SS_UNAUTHENTICATED',
      `only host agents may call this service, not ${formatIdentity(identity)}`,
      { caller: formatIdentity(identity) },
    );
  }
  return Object.freeze({
    identity,
    uri: formatIdentity(identity),
    vault: identity.vault,
    host: identity.name,
    certNotAfter: Date.parse(peer?.valid_to ?? ''),
    fingerprint: fingerprintOfPeerCertificate(peer),
  });
}
