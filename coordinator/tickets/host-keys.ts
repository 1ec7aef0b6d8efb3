/**
 * The ticket service's store of host long-term keys (docs/security.md "The ticket service").
 *
 * Store entry (one per host and key version; the key tree of store/store.ts gains):
 *   v/<vaultId>/ticket-key/<lower host>/<version, 10 digits> → HostKeyRecord
 * The key itself is never stored in clear: `sealedKey` is AES-256-GCM under
 * HKDF(ticket-store key, "key-store") with the vault id, host and version as associated data,
 * so a record copied onto another host or version does not open. The ticket-store key is 32
 * random bytes in <coordinator data>/tickets/store.key (0600), made at first start.
 *
 * Rules: the first registration of a host binds it to the provider (server) that relayed it;
 * the same version again with the same key is a no-op (a resend); a new version must be higher
 * than every stored one (rotation) and come from the same provider; anything else is
 * SS_CONFLICT. The two newest versions are kept (tickets under the previous one stay valid
 * until they end). Keys never appear in logs or errors.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SecondsiteError } from '../../common/errors/errors.ts';
import { writeFileAtomicSync } from '../../common/fs/atomic-file.ts';
import {
  KEY_BYTES,
  LABELS,
  deriveKey,
  open,
  seal,
  type LongTermKey,
} from '../../common/tickets/crypto.ts';
import type { Store } from '../store/store.ts';

export interface HostKeyRecord {
  readonly host: string;
  /** The provider that registered the host's first key (compared case-insensitively). */
  readonly server: string;
  readonly version: number;
  /** base64 of nonce ‖ ciphertext ‖ tag. */
  readonly sealedKey: string;
  readonly registeredAt: number;
}

const KEEP_VERSIONS = 2;

const prefixOf = (vaultId: string, host: string): string =>
  `v/${vaultId}/ticket-key/${host.toLowerCase()}/`;
const keyOf = (vaultId: string, host: string, version: number): string =>
  `${prefixOf(vaultId, host)}${String(version).padStart(10, '0')}`;

/** Reads (or makes, 0600) the coordinator's ticket-store key. */
export function ensureTicketStoreKey(dataDir: string): Buffer {
  const dir = join(dataDir, 'tickets');
  const path = join(dir, 'store.key');
  if (existsSync(path)) {
    const key = readFileSync(path);
    if (key.length !== KEY_BYTES) {
      throw new SecondsiteError('SS_IO', `${path} is not a ${KEY_BYTES}-byte key`, { path });
    }
    return key;
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = randomBytes(KEY_BYTES);
  writeFileAtomicSync(path, key, 0o600);
  return key;
}

export class HostKeys {
  private readonly sealKey: Buffer;

  constructor(
    private readonly store: Store,
    storeKey: Buffer,
  ) {
    this.sealKey = deriveKey(storeKey, LABELS.keyStore);
  }

  private aad(vaultId: string, host: string, version: number): Buffer {
    return Buffer.from(`${vaultId}\n${host.toLowerCase()}\n${version}`, 'utf8');
  }

  private async records(vaultId: string, host: string): Promise<HostKeyRecord[]> {
    const out: HostKeyRecord[] = [];
    for await (const [, r] of this.store.iterate<HostKeyRecord>(prefixOf(vaultId, host))) {
      out.push(r);
    }
    return out.sort((a, b) => a.version - b.version);
  }

  private unseal(vaultId: string, r: HostKeyRecord): LongTermKey {
    const key = open(
      this.sealKey,
      Buffer.from(r.sealedKey, 'base64'),
      this.aad(vaultId, r.host, r.version),
    );
    if (!key || key.length !== KEY_BYTES) {
      throw new SecondsiteError('SS_INTERNAL', `the stored key of ${r.host} does not open`, {
        host: r.host,
        version: r.version,
      });
    }
    return Object.freeze({ version: r.version, key });
  }

  /** Registers a host's key (rules above). */
  async register(
    vaultId: string,
    server: string,
    host: string,
    key: LongTermKey,
    now: number,
  ): Promise<'stored' | 'unchanged'> {
    const have = await this.records(vaultId, host);
    const owner = have[0]?.server;
    if (owner !== undefined && owner.toLowerCase() !== server.toLowerCase()) {
      throw new SecondsiteError(
        'SS_CONFLICT',
        `host ${host} registered its ticket key through server ${owner}, not ${server}`,
        { host, server: owner },
      );
    }
    const same = have.find((r) => r.version === key.version);
    if (same) {
      if (this.unseal(vaultId, same).key.equals(key.key)) return 'unchanged';
      throw new SecondsiteError(
        'SS_CONFLICT',
        `host ${host} already has another ticket key of version ${key.version}`,
        { host, version: key.version },
      );
    }
    const newest = have.at(-1)?.version ?? 0;
    if (key.version < newest) {
      throw new SecondsiteError(
        'SS_CONFLICT',
        `host ${host} has ticket key version ${newest}; version ${key.version} is older`,
        { host, version: key.version, current: newest },
      );
    }
    const record: HostKeyRecord = {
      host: host.toLowerCase(),
      server,
      version: key.version,
      sealedKey: seal(this.sealKey, key.key, this.aad(vaultId, host, key.version)).toString(
        'base64',
      ),
      registeredAt: now,
    };
    const stale = have.slice(0, Math.max(0, have.length + 1 - KEEP_VERSIONS));
    await this.store.batch([
      { type: 'put', key: keyOf(vaultId, host, key.version), value: record },
      ...stale.map((r) => ({ type: 'del' as const, key: keyOf(vaultId, host, r.version) })),
    ]);
    return 'stored';
  }

  /** The host's newest key and the provider it belongs to, or undefined when none. */
  async current(
    vaultId: string,
    host: string,
  ): Promise<{ key: LongTermKey; server: string } | undefined> {
    const r = (await this.records(vaultId, host)).at(-1);
    return r && { key: this.unseal(vaultId, r), server: r.server };
  }

  /** A host's key of one version (for the grant sealed to the asker). */
  async version(vaultId: string, host: string, version: number): Promise<LongTermKey | undefined> {
    const r = (await this.records(vaultId, host)).find((x) => x.version === version);
    return r && this.unseal(vaultId, r);
  }
}
