/**
 * The seed's New York / Chicago example as fabric, shared by the mapping, placement and failback
 * tests. Network part: "Voorbereiden op netwerktoewijzing" (VM networks, logical networks and the
 * clouds that use them). Storage part: "Voorbereiden op opslagkoppeling" (GOUD/ZILVER/BRONS mapped
 * to GOLD_TARGET/SILVER_TARGET/BRONZE_TARGET, two locations per target classification).
 * Storage uses the network example's server names so one fabric serves all tests.
 */
import type { NetworkMap, ServerFabric, StorageMap } from './mapping.ts';

export const NY = 'VMM-NewYork';
export const CH = 'VMM-Chicago';

export const SEED_FABRICS: readonly ServerFabric[] = [
  {
    server: NY,
    clouds: [
      { name: 'GoldCloud1', logicalNetworks: ['LogicalNetwork1 NewYork'] },
      { name: 'SilverCloud1', logicalNetworks: ['LogicalNetwork1 NewYork'] },
    ],
    vmNetworks: [
      { name: 'VMNetwork1 NewYork', logicalNetwork: 'LogicalNetwork1 NewYork' },
      { name: 'VMNetwork2 NewYork', logicalNetwork: 'LogicalNetwork1 NewYork' },
    ],
    classifications: ['GOUD', 'ZILVER', 'BRONS'],
  },
  {
    server: CH,
    // "Instellingen voor cloudbeveiliging": GoldCloud2 and SilverCloud2 use LogicalNetwork1
    // NewYork and LogicalNetwork1 Chicago; LogicalNetwork2Chicago is used by no cloud.
    clouds: [
      {
        name: 'GoldCloud2',
        logicalNetworks: ['LogicalNetwork1 NewYork', 'LogicalNetwork1 Chicago'],
      },
      {
        name: 'SilverCloud2',
        logicalNetworks: ['LogicalNetwork1 NewYork', 'LogicalNetwork1 Chicago'],
      },
    ],
    vmNetworks: [
      { name: 'VMNetwork1 Chicago', logicalNetwork: 'LogicalNetwork1 Chicago' },
      { name: 'VMNetwork2 Chicago', logicalNetwork: 'LogicalNetwork2Chicago' },
    ],
    classifications: ['GOLD_TARGET', 'SILVER_TARGET', 'BRONZE_TARGET'],
  },
];

const q = (server: string, name: string) => ({ server, name });

/** The seed's network table: VMNetwork1 NewYork ⇄ VMNetwork1 Chicago; the 2s unmapped. */
export const SEED_NETWORK_MAPS: readonly NetworkMap[] = [
  { source: q(NY, 'VMNetwork1 NewYork'), target: q(CH, 'VMNetwork1 Chicago') },
  { source: q(CH, 'VMNetwork1 Chicago'), target: q(NY, 'VMNetwork1 NewYork') },
];

/** The seed's storage table: GOUD → GOLD_TARGET, ZILVER → SILVER_TARGET, BRONS → BRONZE_TARGET. */
export const SEED_STORAGE_MAPS: readonly StorageMap[] = [
  { source: q(NY, 'GOUD'), target: q(CH, 'GOLD_TARGET') },
  { source: q(NY, 'ZILVER'), target: q(CH, 'SILVER_TARGET') },
  { source: q(NY, 'BRONS'), target: q(CH, 'BRONZE_TARGET') },
];
