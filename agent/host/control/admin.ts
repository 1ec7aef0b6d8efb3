/**
 * `secondsite host vm ...`: turns command-line values into HostLocal calls on a running
 * agent's control socket. Validation that needs no agent happens here first (exit 2 before
 * anything is sent); the agent validates again at its edge.
 */
import { resolve } from 'node:path';
import { badInput } from '../../../common/errors/errors.ts';
import { parseDuration, parseSize } from '../../../common/config/units.ts';
import { HostLocalClient, type PointJson, type VmJson } from './control-client.ts';

export interface VmCreateFlags {
  readonly data: string;
  readonly name: string;
  readonly disk: readonly string[];
  readonly nic: readonly string[];
}

export interface VmProtectFlags {
  readonly data: string;
  readonly name: string;
  /** 30s | 5m | 15m. @default 5m */
  readonly copyFrequency?: string;
  /** 0–12. @default 0 */
  readonly appConsistentHours?: string;
}

async function withClient<T>(data: string, fn: (c: HostLocalClient) => Promise<T>): Promise<T> {
  const client = HostLocalClient.connect(resolve(data));
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

function parseNic(text: string, i: number): { network: string; subnet: string } {
  const slash = text.lastIndexOf('/');
  const network = slash < 0 ? text : text.slice(0, slash);
  const subnet = slash < 0 ? '' : text.slice(slash + 1);
  if (!network.trim()) throw badInput(`--nic[${i}]`, `"${text}" is not NETWORK[/SUBNET]`);
  return { network, subnet };
}

export function vmCreate(flags: VmCreateFlags): Promise<VmJson> {
  if (flags.disk.length === 0) throw badInput('--disk', 'give at least one --disk SIZE');
  const disks = flags.disk.map((d) => ({ sizeBytes: String(parseSize('--disk', d)) }));
  const nics = flags.nic.map(parseNic);
  return withClient(flags.data, (c) => c.createVm({ name: flags.name, disks, nics }));
}

export type VmAction = 'start' | 'stop' | 'unprotect';

export function vmAction(action: VmAction, flags: { data: string; name: string }): Promise<VmJson> {
  return withClient(flags.data, (c) => {
    const ref = { name: flags.name };
    if (action === 'start') return c.startVm(ref);
    if (action === 'stop') return c.stopVm(ref);
    return c.unprotectVm(ref);
  });
}

export function vmProtect(flags: VmProtectFlags): Promise<VmJson> {
  const seconds = parseDuration('--copy-frequency', flags.copyFrequency ?? '5m') / 1000;
  if (![30, 300, 900].includes(seconds)) {
    throw badInput('--copy-frequency', 'must be 30s, 5m or 15m');
  }
  const hours = Number(flags.appConsistentHours ?? '0');
  if (!Number.isInteger(hours) || hours < 0 || hours > 12) {
    throw badInput('--app-consistent-hours', 'must be a whole number from 0 to 12');
  }
  return withClient(flags.data, (c) =>
    c.protectVm({ name: flags.name, copyFrequencySeconds: seconds, appConsistentHours: hours }),
  );
}

export function vmList(flags: { data: string }): Promise<VmJson[]> {
  return withClient(flags.data, (c) => c.listVms());
}

export function vmCut(flags: {
  data: string;
  name: string;
  appConsistent?: boolean;
}): Promise<PointJson> {
  return withClient(flags.data, (c) =>
    c.cut({ name: flags.name, appConsistent: Boolean(flags.appConsistent) }),
  );
}

export interface VmPairFlags {
  readonly data: string;
  readonly name: string;
  readonly role: string;
  readonly peerHost: string;
  readonly peerAddress: string;
  readonly vault: string;
  /** @default 1 */
  readonly epoch?: string;
  /** on | off. @default on */
  readonly compression?: string;
  /** Replica only: disks to create the replica VM with. */
  readonly disk?: readonly string[];
}

export function vmPair(flags: VmPairFlags): Promise<VmJson> {
  if (flags.role !== 'primary' && flags.role !== 'replica') {
    throw badInput('--role', 'must be primary or replica');
  }
  if (!/^[^\s]+:\d{1,5}$/.test(flags.peerAddress)) {
    throw badInput('--peer-address', `"${flags.peerAddress}" is not IP:PORT`);
  }
  const epoch = flags.epoch ?? '1';
  if (!/^\d+$/.test(epoch)) throw badInput('--epoch', 'must be a whole number');
  const compression = flags.compression ?? 'on';
  if (compression !== 'on' && compression !== 'off') {
    throw badInput('--compression', 'must be on or off');
  }
  if (flags.role === 'primary' && flags.disk?.length) {
    throw badInput('--disk', 'only a replica VM is created by pair');
  }
  const disks = (flags.disk ?? []).map((d) => ({ sizeBytes: String(parseSize('--disk', d)) }));
  return withClient(flags.data, (c) =>
    c.pairVm({
      name: flags.name,
      role: flags.role,
      peerHost: flags.peerHost,
      peerAddress: flags.peerAddress,
      vault: flags.vault,
      epoch,
      compression: compression === 'on',
      disks,
    }),
  );
}

export function vmRead(flags: {
  data: string;
  name: string;
  disk: string;
  point: string;
  out: string;
}): Promise<{ bytes: number }> {
  const disk = Number(flags.disk);
  if (!Number.isInteger(disk) || disk < 0) throw badInput('--disk', 'must be a disk index');
  return withClient(flags.data, (c) =>
    c.readPoint({ name: flags.name, disk, pointId: flags.point, outPath: resolve(flags.out) }),
  );
}

export function vmPoints(flags: { data: string; name: string }): Promise<PointJson[]> {
  return withClient(flags.data, (c) => c.listPoints({ name: flags.name }));
}
