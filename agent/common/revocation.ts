/**
 * The revoked host credentials of this host's vault, as the coordinator last pushed them
 * (through the provider, host command `set_revoked`). The caller adapter (caller.ts) asks it on
 * every call on 8084 and 8083, and stream servers ask it again per segment/frame batch, so a
 * revoked peer's open connections fail on their next call.
 *
 * An entry names a host identity (`secondsite://v/host/h`: every credential of that host) or a
 * certificate fingerprint (one certificate). A list carries a version; an older or equal version
 * than the one held is ignored, so a late resend cannot undo a newer revocation. Persisted 0600
 * in the host's data folder when a file is given, so a restart keeps refusing.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { SecondsiteError } from '../../common/errors/errors.ts';

export interface RevokedList {
  /** Grows with every change the coordinator makes to the vault's list. */
  readonly version: number;
  /** Host identity URIs, e.g. `secondsite://v1/host/hv-a`. */
  readonly identities: readonly string[];
  /** SHA-256 certificate fingerprints (certs/fingerprint.ts format). */
  readonly fingerprints: readonly string[];
}

/** What the check needs of a caller (caller.ts `Caller`). */
export interface RevocationSubject {
  readonly uri: string;
  readonly fingerprint: string;
}

export interface RevocationCheck {
  assertNotRevoked(who: RevocationSubject): void;
}

export class RevocationList implements RevocationCheck {
  private version = 0;
  private identities = new Set<string>();
  private fingerprints = new Set<string>();

  constructor(private readonly file?: string) {
    if (file && existsSync(file)) this.adopt(parse(readFileSync(file, 'utf8')));
  }

  /** Applies a pushed list; false when it is not newer than the one held (nothing changes). */
  replace(list: RevokedList): boolean {
    if (list.version <= this.version) return false;
    if (this.file) {
      const tmp = `${this.file}.tmp`;
      writeFileSync(tmp, JSON.stringify(list), { mode: 0o600 });
      renameSync(tmp, this.file);
    }
    this.adopt(list);
    return true;
  }

  current(): RevokedList {
    return {
      version: this.version,
      identities: [...this.identities],
      fingerprints: [...this.fingerprints],
    };
  }

  isRevoked(who: RevocationSubject): boolean {
    return (
      this.identities.has(who.uri.toLowerCase()) ||
      this.fingerprints.has(who.fingerprint.toLowerCase())
    );
  }

  assertNotRevoked(who: RevocationSubject): void {
    if (this.isRevoked(who)) {
      throw new SecondsiteError('SS_REVOKED', `the credential of ${who.uri} has been revoked`, {
        caller: who.uri,
        revocationVersion: this.version,
      });
    }
  }

  private adopt(list: RevokedList): void {
    this.version = list.version;
    this.identities = new Set(list.identities.map((s) => s.toLowerCase()));
    this.fingerprints = new Set(list.fingerprints.map((s) => s.toLowerCase()));
  }
}

function parse(text: string): RevokedList {
  const v = JSON.parse(text) as Partial<RevokedList>;
  if (
    typeof v.version !== 'number' ||
    !Array.isArray(v.identities) ||
    !Array.isArray(v.fingerprints)
  ) {
    throw new SecondsiteError('SS_BAD_INPUT', 'the revoked-host file is malformed');
  }
  return { version: v.version, identities: v.identities, fingerprints: v.fingerprints };
}
