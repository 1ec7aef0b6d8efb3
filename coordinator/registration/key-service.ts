/**
 * Registration keys (R2): issue, list, revoke, and check a presented key file. The only writer
 * of key records. Rules live in coordinator/domain/registration-key.ts; this file hashes,
 * stores and serialises.
 */
import { generateSecret, hashSecret, secretMatchesHash } from '../../certs/secrets.ts';
import { SecondsiteError, badInput } from '../../common/errors/errors.ts';
import type { Clock } from '../../common/time/clock.ts';
import {
  registrationKeyFileSchema,
  type RegistrationKeyFile,
} from '../../common/wire/registration-key.ts';
import {
  checkKey,
  keyFileFor,
  keyRefusalError,
  keyValidity,
  markUsed,
  newKeyRecord,
  type KeyRecord,
} from '../domain/registration-key.ts';
import type { Vault } from '../domain/vault.ts';
import { newId } from '../ids.ts';
import { collect, keys, type Store } from '../store/store.ts';

export interface IssueKeyRequest {
  readonly vault: Vault;
  readonly validForMs?: number;
  readonly singleUse: boolean;
  readonly server: string | null;
}

/** What the coordinator puts in every key: where to dial and which CA to pin. */
export interface KeyIssuerFacts {
  readonly coordinatorUrl: () => string;
  readonly caFingerprint: string;
}

/** Server names as the site file and `--name` give them: "VMM-NewYork". */
export const SERVER_NAME_RE = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

export class KeyService {
  /** Checks and uses run one at a time, so a single-use key cannot be used twice at once. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly facts: KeyIssuerFacts,
  ) {}

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async issue(req: IssueKeyRequest): Promise<RegistrationKeyFile> {
    const validFor = keyValidity(req.validForMs);
    if (validFor === 'too-long') throw badInput('validFor', 'a key is valid for at most 5 days');
    if (validFor === 'too-short') throw badInput('validFor', 'must be longer than 0');
    if (req.server !== null && !SERVER_NAME_RE.test(req.server)) {
      throw badInput('server', 'a server name is 1-63 of A-Z, a-z, 0-9, ".", "_" and "-"');
    }
    const secret = generateSecret();
    let id = newId('k');
    while ((await this.store.get(keys.keyVault(id))) !== undefined) id = newId('k');
    const record = newKeyRecord({
      id,
      vaultId: req.vault.id,
      vault: req.vault.name,
      coordinatorUrl: this.facts.coordinatorUrl(),
      caFingerprint: this.facts.caFingerprint,
      secretHash: hashSecret(secret),
      now: this.clock.now(),
      validForMs: validFor,
      singleUse: req.singleUse,
      server: req.server,
    });
    await this.store.batch([
      { type: 'put', key: keys.key(req.vault.id, id), value: record },
      { type: 'put', key: keys.keyVault(id), value: req.vault.id },
    ]);
    return keyFileFor(record, secret);
  }

  async list(vaultId: string): Promise<KeyRecord[]> {
    const all = await collect<KeyRecord>(this.store, keys.keyPrefix(vaultId));
    return all.sort((a, b) => a.issuedAt.localeCompare(b.issuedAt));
  }

  revoke(vaultId: string, keyId: string): Promise<KeyRecord> {
    return this.serial(async () => {
      const record = await this.store.get<KeyRecord>(keys.key(vaultId, keyId));
      if (record === undefined) {
        throw new SecondsiteError('SS_NOT_FOUND', `no registration key ${keyId} in this vault`, {
          keyId,
        });
      }
      if (record.revokedAt !== null) return record;
      const revoked = { ...record, revokedAt: new Date(this.clock.now()).toISOString() };
      await this.store.put(keys.key(vaultId, keyId), revoked);
      return revoked;
    });
  }

  /**
   * Checks a presented key file for a registration and records the use. Resolves with the
   * key's record; throws the refusal that names which problem it is.
   */
  async use(a: {
    keyJson: string;
    registrationId: string;
    serverName: string;
  }): Promise<KeyRecord> {
    const presented = parseKeyJson(a.keyJson);
    return this.serial(async () => {
      const vaultId = await this.store.get<string>(keys.keyVault(presented.keyId));
      const record =
        vaultId === undefined
          ? undefined
          : await this.store.get<KeyRecord>(keys.key(vaultId, presented.keyId));
      const verdict = checkKey({
        record,
        presented,
        secretMatches:
          record !== undefined && secretMatchesHash(presented.secret, record.secretHash),
        registrationId: a.registrationId,
        serverName: a.serverName,
        now: this.clock.now(),
      });
      if (verdict !== 'ok' || record === undefined) {
        throw keyRefusalError(verdict === 'ok' ? 'unknown' : verdict, {
          keyId: presented.keyId,
          ...(record === undefined ? {} : { record }),
          presentedVault: presented.vault,
        });
      }
      const used = markUsed(record, a.registrationId);
      if (used !== record) await this.store.put(keys.key(record.vaultId, record.id), used);
      return used;
    });
  }
}

/** A key file that is not even well-formed is refused as invalid, without echoing it. */
export function parseKeyJson(text: string): RegistrationKeyFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new SecondsiteError('SS_KEY_INVALID', 'the registration key file is not JSON');
  }
  const parsed = registrationKeyFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field =
      issue?.code === 'unrecognized_keys' ? issue.keys[0] : (issue?.path.join('.') ?? '');
    throw new SecondsiteError(
      'SS_KEY_INVALID',
      `the registration key file is malformed (${field}: ${issue?.message ?? 'invalid'}); download a new key`,
      { field },
    );
  }
  return parsed.data;
}
