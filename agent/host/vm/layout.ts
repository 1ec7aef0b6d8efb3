/**
 * Where the host agent keeps things in its data folder:
 *
 *   <data>/LOCK.pid                    one agent per folder (common/lifecycle/data-lock.ts)
 *   <data>/control.sock                the local admin API (HostLocal over gRPC), 0600
 *   <data>/run/<vm>-<index>.sock       one NBD export per disk of a running VM
 *   <data>/vms/<vm>/vm.json            the VM's config (vm-config.ts)
 *   <data>/vms/<vm>/disk-<index>.raw   sparse raw images, 0600
 *   <data>/vms/<vm>/guest-agent.sock   the guest-agent channel, 0600
 *   <data>/vms/<vm>/journal/           the VM's journal while protected
 *   <data>/vms/<vm>/points.jsonl       its recovery point index while protected
 *
 * Folders are 0700, so the sockets are private from the moment they exist.
 */
import { join } from 'node:path';
import { badInput } from '../../../common/errors/errors.ts';

/** sockaddr_un.sun_path is 108 bytes with its terminating NUL. */
const MAX_SOCKET_PATH = 107;

export function checkSocketPath(path: string): string {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw badInput(
      'data',
      `the socket path ${path} is longer than ${MAX_SOCKET_PATH} bytes; use a shorter data folder path`,
    );
  }
  return path;
}

export const layout = Object.freeze({
  controlSocket: (data: string) => join(data, 'control.sock'),
  runDir: (data: string) => join(data, 'run'),
  vmsDir: (data: string) => join(data, 'vms'),
  vmDir: (data: string, vm: string) => join(data, 'vms', vm),
  diskFile: (index: number) => `disk-${index}.raw`,
  exportSocket: (data: string, vm: string, index: number) =>
    join(data, 'run', `${vm}-${index}.sock`),
  exportName: (vm: string, index: number) => `${vm}-${index}`,
  guestSocket: (data: string, vm: string) => join(data, 'vms', vm, 'guest-agent.sock'),
  journalDir: (data: string, vm: string) => join(data, 'vms', vm, 'journal'),
  pointIndex: (data: string, vm: string) => join(data, 'vms', vm, 'points.jsonl'),
});
