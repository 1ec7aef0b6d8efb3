/**
 * The coordinator's state store: a narrow, ordered key-value interface with JSON values
 * (STYLE.md rule 10). The LevelDB implementation lives in level-store.ts; tests run the same
 * code over memory-level, and faulty-store.ts wraps any store to inject failures.
 *
 * Key tree (keys are '/'-separated; names and ids never contain '/'):
 *
 *   meta/schemaVersion              → number       layout version, upgraded by schema.ts
 *   meta/adminTokenHash             → TokenHash    hash of the admin token (never the token)
 *   vault/<vaultId>                 → Vault        one record per vault
 *   vault-name/<lower-case name>    → vaultId      unique-name index (names compare
 *                                                  case-insensitively)
 *   job-vault/<jobId>               → vaultId      lets `job show ID` find a job's vault
 *   v/<vaultId>/job/<jobId>         → Job          everything that belongs to a vault lives
 *   v/<vaultId>/...                                under v/<vaultId>/ (R1: vault isolation),
 *                                                  so deleting or listing a vault is a prefix
 *   key-vault/<keyId>               → vaultId      lets a registration find its key's vault
 *   v/<vaultId>/key/<keyId>         → KeyRecord    registration key (hash of the secret only)
 *   v/<vaultId>/registration/<regId> → jobId       a provider's registration attempt → its job
 *   v/<vaultId>/server/<lower name> → ServerRecord a registered provider (site manager)
 *   v/<vaultId>/cloud/<lower server>/<cloud> → CloudRecord   a synced cloud (R5)
 *   v/<vaultId>/host/<lower server>/<host> → HostRecord     a host's VMs as its provider
 *                                                  last reported them (R7)
 *   v/<vaultId>/policy/<lower name> → PolicyRecord  a replication policy (R11)
 *   v/<vaultId>/association/<lower server>/<cloud> → AssociationRecord   a cloud pair under a
 *                                                  policy, keyed by its primary (source)
 *                                                  cloud: a cloud is primary at most once (R12)
 *   v/<vaultId>/map/<network|storage>/<lower server>/<name> → ResourceMap   a network or
 *                                                  storage map, keyed by its source (R8, R9)
 *   v/<vaultId>/plan/<lower name>   → PlanRecord   a recovery plan (R28)
 *   v/<vaultId>/bandwidth/<lower server>/<host> → BandwidthRecord   a host's replication
 *                                                  bandwidth cap (R22), pushed to the host
 *   v/<vaultId>/revoked             → RevokedRecord  the vault's revoked host credentials
 *                                                  (issue #7), pushed to every host
 *
 * Invariant: every state change is written (synchronously, for LevelDB) before the caller
 * acknowledges it to anyone; a batch is all-or-nothing.
 */
export type BatchOp =
  | { readonly type: 'put'; readonly key: string; readonly value: unknown }
  | { readonly type: 'del'; readonly key: string };

export interface Store {
  /** The stored value, or undefined when the key is absent. */
  get<T>(key: string): Promise<T | undefined>;
  put(key: string, value: unknown): Promise<void>;
  del(key: string): Promise<void>;
  /** Applies every operation or none. */
  batch(ops: readonly BatchOp[]): Promise<void>;
  /** Entries whose key starts with prefix, in key order. */
  iterate<T>(prefix: string): AsyncIterable<readonly [string, T]>;
  close(): Promise<void>;
}

/** Builds keys of the tree above; one place so a typo cannot create a stray branch. */
export const keys = Object.freeze({
  schemaVersion: 'meta/schemaVersion',
  adminTokenHash: 'meta/adminTokenHash',
  vault: (vaultId: string) => `vault/${vaultId}`,
  vaultPrefix: 'vault/',
  vaultName: (name: string) => `vault-name/${name.toLowerCase()}`,
  jobVault: (jobId: string) => `job-vault/${jobId}`,
  job: (vaultId: string, jobId: string) => `v/${vaultId}/job/${jobId}`,
  jobPrefix: (vaultId: string) => `v/${vaultId}/job/`,
  keyVault: (keyId: string) => `key-vault/${keyId}`,
  key: (vaultId: string, keyId: string) => `v/${vaultId}/key/${keyId}`,
  keyPrefix: (vaultId: string) => `v/${vaultId}/key/`,
  registration: (vaultId: string, regId: string) => `v/${vaultId}/registration/${regId}`,
  server: (vaultId: string, name: string) => `v/${vaultId}/server/${name.toLowerCase()}`,
  serverPrefix: (vaultId: string) => `v/${vaultId}/server/`,
  cloud: (vaultId: string, server: string, cloud: string) =>
    `v/${vaultId}/cloud/${server.toLowerCase()}/${cloud}`,
  cloudPrefix: (vaultId: string) => `v/${vaultId}/cloud/`,
  host: (vaultId: string, server: string, host: string) =>
    `v/${vaultId}/host/${server.toLowerCase()}/${host}`,
  hostPrefix: (vaultId: string) => `v/${vaultId}/host/`,
  policy: (vaultId: string, name: string) => `v/${vaultId}/policy/${name.toLowerCase()}`,
  policyPrefix: (vaultId: string) => `v/${vaultId}/policy/`,
  association: (vaultId: string, server: string, cloud: string) =>
    `v/${vaultId}/association/${server.toLowerCase()}/${cloud}`,
  associationPrefix: (vaultId: string) => `v/${vaultId}/association/`,
  map: (vaultId: string, kind: 'network' | 'storage', server: string, name: string) =>
    `v/${vaultId}/map/${kind}/${server.toLowerCase()}/${name}`,
  mapPrefix: (vaultId: string, kind: 'network' | 'storage') => `v/${vaultId}/map/${kind}/`,
  plan: (vaultId: string, name: string) => `v/${vaultId}/plan/${name.toLowerCase()}`,
  bandwidth: (vaultId: string, server: string, host: string) =>
    `v/${vaultId}/bandwidth/${server.toLowerCase()}/${host}`,
  bandwidthPrefix: (vaultId: string) => `v/${vaultId}/bandwidth/`,
  revoked: (vaultId: string) => `v/${vaultId}/revoked`,
  planPrefix: (vaultId: string) => `v/${vaultId}/plan/`,
});

/** Collects an iteration into an array (small collections only: vaults, jobs of a vault). */
export async function collect<T>(store: Store, prefix: string): Promise<T[]> {
  const out: T[] = [];
  for await (const [, value] of store.iterate<T>(prefix)) out.push(value);
  return out;
}
