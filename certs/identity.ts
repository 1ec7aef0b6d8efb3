/**
 * Identities of secondsite processes, carried as a URI SAN in their certificates:
 *
 *   secondsite://<vault>/host/<name>
 *   secondsite://<vault>/provider/<name>
 *   secondsite://<vault>/coordinator
 *
 * Handlers authorise by exact identity, so the text form must be canonical: one spelling per
 * identity. The vault sits in the URI's authority, which RFC 3986 compares case-insensitively;
 * allowing only lowercase removes that second spelling. Names allow no `/`, `%`, `..` or
 * spaces, so no percent-encoding or path normalisation can make two strings mean one identity.
 * Pure: no I/O, no forge.
 */
import { SecondsiteError } from '../common/errors/errors.ts';

export const IDENTITY_SCHEME = 'secondsite';

export type IdentityKind = 'host' | 'provider' | 'coordinator';

export type Identity =
  | { readonly kind: 'host'; readonly vault: string; readonly name: string }
  | { readonly kind: 'provider'; readonly vault: string; readonly name: string }
  | { readonly kind: 'coordinator'; readonly vault: string };

/** A DNS label (the vault is the URI's host part): 1–63 of [a-z0-9-], no leading/trailing `-`. */
const VAULT_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Host and provider names: 1–63 of [a-z0-9._-], starting and ending alphanumeric. */
const NAME_RE = /^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$/;
const URI_RE = /^secondsite:\/\/([^/]*)\/(host|provider|coordinator)(?:\/([^/]*))?$/;

export function isValidVaultName(vault: string): boolean {
  return VAULT_RE.test(vault);
}

export function isValidIdentityName(name: string): boolean {
  return NAME_RE.test(name) && !name.includes('..');
}

function refuse(text: string, why: string): SecondsiteError {
  return new SecondsiteError('SS_BAD_INPUT', `identity: ${why}`, {
    field: 'identity',
    identity: text.slice(0, 200),
  });
}

/** The canonical URI of an identity; throws SS_BAD_INPUT if a part is outside the charset. */
export function formatIdentity(identity: Identity): string {
  const uri =
    identity.kind === 'coordinator'
      ? `${IDENTITY_SCHEME}://${identity.vault}/coordinator`
      : `${IDENTITY_SCHEME}://${identity.vault}/${identity.kind}/${identity.name}`;
  // Round-trip through the parser so that formatting can never produce what parsing refuses.
  parseIdentity(uri);
  return uri;
}

/** Parses and validates an identity URI; undefined when it is not a valid identity. */
export function tryParseIdentity(text: string): Identity | undefined {
  try {
    return parseIdentity(text);
  } catch {
    return undefined;
  }
}

/** Parses an identity URI strictly; throws SS_BAD_INPUT naming what is wrong. */
export function parseIdentity(text: string): Identity {
  const m = URI_RE.exec(text);
  if (!m) throw refuse(text, `not of the form secondsite://<vault>/(host|provider)/<name>`);
  const [, vault = '', kind, name] = m;
  if (!isValidVaultName(vault)) {
    throw refuse(text, 'vault must be 1-63 of a-z, 0-9 and "-", starting and ending alphanumeric');
  }
  if (kind === 'coordinator') {
    if (name !== undefined) throw refuse(text, 'the coordinator identity has no name');
    return Object.freeze({ kind, vault });
  }
  if (kind !== 'host' && kind !== 'provider') throw refuse(text, 'unknown kind');
  if (name === undefined || !isValidIdentityName(name)) {
    throw refuse(
      text,
      'name must be 1-63 of a-z, 0-9, ".", "_" and "-", starting and ending alphanumeric',
    );
  }
  return Object.freeze({ kind, vault, name });
}

export function hostIdentity(vault: string, name: string): Identity {
  return Object.freeze({ kind: 'host', vault, name });
}

export function providerIdentity(vault: string, name: string): Identity {
  return Object.freeze({ kind: 'provider', vault, name });
}

export function coordinatorIdentity(vault: string): Identity {
  return Object.freeze({ kind: 'coordinator', vault });
}

/** Exact comparison: the only way handlers should compare identities. */
export function sameIdentity(a: Identity, b: Identity): boolean {
  return formatIdentity(a) === formatIdentity(b);
}

/**
 * The one identity among a certificate's URI SANs. Foreign URIs are ignored; a certificate
 * with none, or with two secondsite identities, names no single caller and is refused.
 */
export function identityFromUris(uris: readonly string[]): Identity {
  const ours = uris.filter((u) => u.toLowerCase().startsWith(`${IDENTITY_SCHEME}:`));
  if (ours.length !== 1) {
    throw new SecondsiteError(
      'SS_CERT_INVALID',
      `certificate must carry exactly one secondsite identity URI SAN, found ${ours.length}`,
      { count: ours.length },
    );
  }
  const identity = tryParseIdentity(ours[0] ?? '');
  if (!identity) {
    throw new SecondsiteError('SS_CERT_INVALID', 'certificate identity URI SAN is malformed', {
      uri: (ours[0] ?? '').slice(0, 200),
    });
  }
  return identity;
}
