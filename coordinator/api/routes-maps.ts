/** Network maps (R8) and storage maps (R9): /api/v1/vaults/:vault/{network,storage}-maps. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { MapView } from '../../common/api-client/types.ts';
import { formatQualified, type MapKind, type ResourceMap } from '../domain/mapping.ts';
import type { MapService } from '../mappings/map-service.ts';
import type { VaultService } from '../vaults/vault-service.ts';
import { route } from './route.ts';

const vaultParams = z.object({ vault: z.string() }).strict();
/** SERVER/NAME on both ends; the domain parses and checks them against the fabric. */
const mapInput = z.object({ source: z.string(), target: z.string() }).strict();

export function mapView(m: ResourceMap): MapView {
  return { source: formatQualified(m.source), target: formatQualified(m.target) };
}

export function mapRoutes(
  app: FastifyInstance,
  deps: { vaults: VaultService; maps: MapService },
): void {
  const { vaults, maps } = deps;
  for (const kind of ['network', 'storage'] as const satisfies readonly MapKind[]) {
    const url = `/api/v1/vaults/:vault/${kind}-maps`;
    route(app, {
      method: 'POST',
      url,
      params: vaultParams,
      body: mapInput,
      status: 201,
      handler: async ({ params, body }): Promise<MapView> => {
        const vault = await vaults.byName(params.vault);
        return mapView(await maps.create(vault.id, kind, body));
      },
    });
    route(app, {
      method: 'GET',
      url,
      params: vaultParams,
      handler: async ({ params }): Promise<{ maps: MapView[] }> => {
        const vault = await vaults.byName(params.vault);
        return { maps: (await maps.list(vault.id, kind)).map(mapView) };
      },
    });
    // DELETE names the map in the query: a DELETE body is not something every client sends.
    route(app, {
      method: 'DELETE',
      url,
      params: vaultParams,
      query: mapInput,
      handler: async ({ params, query }): Promise<MapView> => {
        const vault = await vaults.byName(params.vault);
        return mapView(await maps.delete(vault.id, kind, query));
      },
    });
  }
}
