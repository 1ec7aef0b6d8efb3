/** Human renderings of host VMs and recovery points (`secondsite host vm ...`). */
import type { PointJson, VmJson } from '../../agent/host/main.ts';
import { humanSize, table } from './table.ts';

function protection(vm: VmJson): string {
  if (!vm.protected) return 'no';
  const app = vm.appConsistentHours > 0 ? `, app-consistent every ${vm.appConsistentHours}h` : '';
  return `every ${vm.copyFrequencySeconds}s${app}`;
}

export function vmsTable(vms: readonly VmJson[]): string {
  if (vms.length === 0) return 'no VMs on this host\n';
  const main = table(
    ['NAME', 'STATE', 'PROTECTION', 'JOURNAL', 'UNSHIPPED', 'GUEST AGENT', 'LATEST POINT'],
    vms.map((v) => [
      v.name,
      v.state,
      protection(v),
      v.journalState || '-',
      v.protected ? humanSize(v.unshippedBytes) : '-',
      v.guestConnected ? 'connected' : '-',
      v.latestRecoveryPoint ? `${v.latestRecoveryPoint.id} (${v.latestRecoveryPoint.type})` : '-',
    ]),
  );
  const disks = table(
    ['VM', 'DISK', 'SIZE', 'NBD'],
    vms.flatMap((v) =>
      v.disks.map((d) => [v.name, String(d.index), humanSize(d.sizeBytes), d.nbd || '(stopped)']),
    ),
  );
  const paired = vms.filter((v) => v.replication);
  if (paired.length === 0) return `${main}\n${disks}`;
  const repl = table(
    ['VM', 'ROLE', 'PEER', 'STATE', 'LAST ACKED', 'LAST ERROR'],
    paired.map((v) => {
      const r = v.replication!;
      return [v.name, r.role, r.peer, r.state, String(r.lastAckedSeq), r.lastError || '-'];
    }),
  );
  return `${main}\n${disks}\n${repl}`;
}

export function pointsTable(points: readonly PointJson[]): string {
  if (points.length === 0) return 'no recovery points\n';
  return table(
    ['ID', 'TIME', 'TYPE', 'SEGMENT', 'NOTE'],
    points.map((p) => [p.id, p.time, p.type, String(p.segment), p.freezeFailed ?? '']),
  );
}

export function pointLine(p: PointJson): string {
  const note = p.freezeFailed ? ` (freeze failed: ${p.freezeFailed})` : '';
  return `cut ${p.type} recovery point ${p.id} at ${p.time}${note}\n`;
}
