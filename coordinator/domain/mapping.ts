/**
 * Network maps (R8) and storage maps (R9): source SERVER/NAME → target SERVER/NAME. Pure.
 *
 * Rules kept here:
 * - a source has at most one map (a second create for the same source is refused; changing a
 *   map is delete + create, after which `replanNics` in placement.ts reconnects replicas);
 * - source and target must exist in their server's fabric;
 * - a target VM network must be usable by a cloud of its server: its logical network is
 *   associated with at least one cloud there (R7). This is the seed's "Doelnetwerken" table:
 *   VMNetwork2 Chicago sits on LogicalNetwork2Chicago, which no Chicago cloud uses, so it is
 *   "niet beschikbaar" as a target;
 * - source and target may be on the same server (single-server protection, R6).
 *
 * Server names compare case-insensitively (they are identities, see server.ts identityNameOf);
 * network and classification names compare exactly, as the site file spells them.
 */
import { SecondsiteError, badInput } from '../../common/errors/errors.ts';

export interface Qualified {
  readonly server: string;
  readonly name: string;
}

export interface ResourceMap {
  readonly source: Qualified;
  readonly target: Qualified;
}
export type NetworkMap = ResourceMap;
export type StorageMap = ResourceMap;

export type MapKind = 'network' | 'storage';

/** What mapping validation needs to know of one server's fabric. */
export interface ServerFabric {
  readonly server: string;
  readonly clouds: readonly {
    readonly name: string;
    readonly logicalNetworks: readonly string[];
  }[];
  readonly vmNetworks: readonly { readonly name: string; readonly logicalNetwork: string }[];
  readonly classifications: readonly string[];
}

export interface MapInput {
  readonly source: string;
  readonly target: string;
}

export function sameServer(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

export function sameQualified(a: Qualified, b: Qualified): boolean {
  return sameServer(a.server, b.server) && a.name === b.name;
}

export function formatQualified(q: Qualified): string {
  return `${q.server}/${q.name}`;
}

/** SERVER/NAME, split at its one "/" (fabric names never contain "/", see site-schema.ts). */
export function parseQualified(field: string, text: string): Qualified {
  const parts = text.split('/');
  const [server, name] = parts;
  if (parts.length !== 2 || !server || !name) {
    throw badInput(field, `"${text}" is not SERVER/NAME`);
  }
  return Object.freeze({ server, name });
}

function fabricOf(field: string, server: string, fabrics: readonly ServerFabric[]): ServerFabric {
  const f = fabrics.find((s) => sameServer(s.server, server));
  if (f === undefined) {
    const known = fabrics.map((s) => s.server).join(', ') || 'none';
    throw badInput(field, `no server named "${server}" in this vault (known: ${known})`);
  }
  return f;
}

function requireNetwork(field: string, q: Qualified, fabric: ServerFabric, asTarget: boolean) {
  const net = fabric.vmNetworks.find((n) => n.name === q.name);
  if (net === undefined) {
    const known = fabric.vmNetworks.map((n) => n.name).join(', ') || 'none';
    throw badInput(field, `no VM network "${q.name}" on ${fabric.server} (known: ${known})`);
  }
  if (asTarget && !fabric.clouds.some((c) => c.logicalNetworks.includes(net.logicalNetwork))) {
    throw badInput(
      field,
      `VM network "${q.name}" is not available as a target: its logical network ` +
        `"${net.logicalNetwork}" is associated with no cloud of ${fabric.server}`,
    );
  }
}

function requireClassification(field: string, q: Qualified, fabric: ServerFabric) {
  if (!fabric.classifications.includes(q.name)) {
    const known = fabric.classifications.join(', ') || 'none';
    throw badInput(
      field,
      `no storage classification "${q.name}" on ${fabric.server} (known: ${known})`,
    );
  }
}

/**
 * Validates one new map against the fabric and the existing maps of the same kind. Returns the
 * list with the map added (frozen); an identical map already present is returned unchanged, so a
 * repeated create is harmless.
 */
export function addMap(
  kind: MapKind,
  input: MapInput,
  existing: readonly ResourceMap[],
  fabrics: readonly ServerFabric[],
): readonly ResourceMap[] {
  const source = parseQualified('source', input.source);
  const target = parseQualified('target', input.target);
  const sourceFabric = fabricOf('source', source.server, fabrics);
  const targetFabric = fabricOf('target', target.server, fabrics);
  if (kind === 'network') {
    requireNetwork('source', source, sourceFabric, false);
    requireNetwork('target', target, targetFabric, true);
  } else {
    requireClassification('source', source, sourceFabric);
    requireClassification('target', target, targetFabric);
  }
  // Stored with the servers' registered spelling so lists read as the fabric does.
  const map: ResourceMap = Object.freeze({
    source: Object.freeze({ server: sourceFabric.server, name: source.name }),
    target: Object.freeze({ server: targetFabric.server, name: target.name }),
  });
  const clash = existing.find((m) => sameQualified(m.source, map.source));
  if (clash !== undefined) {
    if (sameQualified(clash.target, map.target)) return existing;
    throw new SecondsiteError(
      'SS_CONFLICT',
      `${formatQualified(map.source)} is already mapped to ${formatQualified(clash.target)}; ` +
        `a source has one ${kind} map: delete it first (secondsite ${kind}-map delete)`,
      { kind, source: formatQualified(map.source), target: formatQualified(clash.target) },
    );
  }
  return Object.freeze([...existing, map]);
}

/** Removes the map source → target; refuses when no such map exists. */
export function removeMap(
  kind: MapKind,
  input: MapInput,
  existing: readonly ResourceMap[],
): readonly ResourceMap[] {
  const source = parseQualified('source', input.source);
  const target = parseQualified('target', input.target);
  const i = existing.findIndex(
    (m) => sameQualified(m.source, source) && sameQualified(m.target, target),
  );
  if (i < 0) {
    throw new SecondsiteError(
      'SS_NOT_FOUND',
      `no ${kind} map from ${input.source} to ${input.target} (secondsite ${kind}-map list)`,
      { kind, source: input.source, target: input.target },
    );
  }
  return Object.freeze(existing.filter((_, j) => j !== i));
}

/** The target a source maps to, or null when the source is unmapped. */
export function mappedTarget(maps: readonly ResourceMap[], source: Qualified): Qualified | null {
  return maps.find((m) => sameQualified(m.source, source))?.target ?? null;
}

/**
 * R8's subnet rule: the target subnet of the same name as the source VM's subnet, otherwise the
 * target network's first subnet; null when the target network has no subnets.
 */
export function pickSubnet(
  sourceSubnet: string | null,
  targetSubnets: readonly { readonly name: string }[],
): string | null {
  const same = targetSubnets.find((s) => s.name === sourceSubnet);
  return (same ?? targetSubnets[0])?.name ?? null;
}

/**
 * The VM networks of a server a given protecting (secondary) cloud can connect replicas to: those
 * whose logical network the cloud is associated with (the seed's "Doelnetwerken" table).
 */
export function targetNetworksFor(fabric: ServerFabric, cloud: string): readonly string[] {
  const c = fabric.clouds.find((x) => x.name === cloud);
  if (c === undefined) return [];
  return fabric.vmNetworks
    .filter((n) => c.logicalNetworks.includes(n.logicalNetwork))
    .map((n) => n.name);
}
