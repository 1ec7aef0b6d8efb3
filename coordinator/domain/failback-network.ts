/**
 * R10: which network the primary VM is connected to on failback, per NIC. Pure.
 *
 * The original's table (seed, "Failback"): VM1 on VMNetwork1 NewYork, mapped to VMNetwork1
 * Chicago; VM2, its replica, on VMNetwork1 Chicago. After a failover:
 *
 * | rule                 | what happened to the replica's NIC            | primary's NIC on failback |
 * | -------------------- | --------------------------------------------- | ------------------------- |
 * | unchanged            | nothing                                       | stays on its source network |
 * | replica-disconnected | disconnected                                  | disconnected              |
 * | moved-unmapped       | moved to a network with no map back           | disconnected              |
 * | mapping-changed      | the map of its network now points elsewhere   | the newly mapped network  |
 *
 * One rule the table implies but does not list, `moved-mapped`: a replica moved to a network
 * that does map back follows that map. The reverse maps go from the replica's server to the
 * primary's server (the seed maps VMNetwork1 Chicago → VMNetwork1 NewYork). An unchanged
 * replica network without any map back keeps the primary where it was: nothing changed.
 * Rules are tried in the table's order; the first that fits decides, and its name is returned
 * so the failback job can say which one fired.
 */
import {
  mappedTarget,
  pickSubnet,
  sameQualified,
  type NetworkMap,
  type Qualified,
} from './mapping.ts';

export type FailbackNicRule =
  'unchanged' | 'replica-disconnected' | 'moved-unmapped' | 'mapping-changed' | 'moved-mapped';

export interface FailbackNicInput {
  /** The primary VM's NIC before the failover (server = the primary's server). */
  readonly primary: { readonly network: Qualified; readonly subnet: string | null } | null;
  /** The replica's NIC as placed at failover time. */
  readonly replicaAtFailover: { readonly network: Qualified | null };
  /** The replica's NIC now, at failback. */
  readonly replicaNow: { readonly network: Qualified | null; readonly subnet: string | null };
  /** Maps from the replica's server back to the primary's server. */
  readonly reverseMaps: readonly NetworkMap[];
  /** Subnets of the primary server's VM networks, for the subnet-name rule. */
  readonly primaryNetworks: readonly {
    readonly name: string;
    readonly subnets: readonly { readonly name: string }[];
  }[];
}

export interface FailbackNic {
  readonly network: Qualified | null;
  readonly subnet: string | null;
  readonly rule: FailbackNicRule;
}

function connectTo(
  target: Qualified,
  subnet: string | null,
  input: FailbackNicInput,
  rule: FailbackNicRule,
): FailbackNic {
  const subnets = input.primaryNetworks.find((n) => n.name === target.name)?.subnets ?? [];
  return { network: target, subnet: pickSubnet(subnet, subnets), rule };
}

export function failbackNic(input: FailbackNicInput): FailbackNic {
  const now = input.replicaNow.network;
  if (now === null) return { network: null, subnet: null, rule: 'replica-disconnected' };
  const back = mappedTarget(input.reverseMaps, now);
  const before = input.replicaAtFailover.network;
  const unchanged = before !== null && sameQualified(before, now);
  if (unchanged) {
    const original = input.primary;
    if (back === null || (original !== null && sameQualified(back, original.network))) {
      return original === null
        ? { network: null, subnet: null, rule: 'unchanged' }
        : { network: original.network, subnet: original.subnet, rule: 'unchanged' };
    }
    return connectTo(back, input.replicaNow.subnet, input, 'mapping-changed');
  }
  if (back === null) return { network: null, subnet: null, rule: 'moved-unmapped' };
  return connectTo(back, input.replicaNow.subnet, input, 'moved-mapped');
}
