/**
 * What the policy service stores (store.ts keys `policy` and `association`) and how a cloud's
 * pairing is read from the associations. Pure; shared with the inventory's `cloud list`.
 *
 * An association pairs a primary (source) cloud with a secondary (target) cloud under one
 * policy (R12). A cloud is in at most one association (checkAssociation refuses a second), so
 * an association is stored under its primary cloud and a cloud's role is found by scanning the
 * vault's associations (a handful per vault).
 */
import { formatQualified, sameQualified, type Qualified } from '../domain/mapping.ts';
import type { CloudAssociationView, Policy } from '../domain/policy.ts';

export interface PolicyRecord extends Policy {
  readonly createdAt: string;
  /** When `policy update` last changed a setting; absent until then. */
  readonly updatedAt?: string;
}

export interface AssociationRecord {
  /** The policy's name as created. */
  readonly policy: string;
  readonly source: Qualified;
  readonly target: Qualified;
  readonly associatedAt: string;
}

/** A cloud as association sees it: its policy, partner and side, from the associations. */
export function cloudPairing(
  associations: readonly AssociationRecord[],
  cloud: Qualified,
): CloudAssociationView {
  for (const a of associations) {
    if (sameQualified(a.source, cloud)) {
      return { ...cloud, policy: a.policy, pairedWith: a.target, role: 'primary' };
    }
    if (sameQualified(a.target, cloud)) {
      return { ...cloud, policy: a.policy, pairedWith: a.source, role: 'secondary' };
    }
  }
  return { ...cloud, policy: null, pairedWith: null, role: null };
}

/** `cloud list`'s policy and pairedWith ("SERVER/CLOUD") for one cloud. */
export function pairingColumns(
  associations: readonly AssociationRecord[],
  cloud: Qualified,
): { policy: string | null; pairedWith: string | null } {
  const p = cloudPairing(associations, cloud);
  return {
    policy: p.policy,
    pairedWith: p.pairedWith === null ? null : formatQualified(p.pairedWith),
  };
}
